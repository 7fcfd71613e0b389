"""Cookie consent per browser, with Do Not Track and Global Privacy Control (CON-4).

Only essential cookies exist until a visitor says otherwise. The browser's choice lives
in one signed, essential cookie (it *is* the choice); the evidence goes to the ledger,
keyed by a random visitor id kept in that cookie. A ``Sec-GPC: 1`` or ``DNT: 1`` header
refuses analytics and advertising on every request that carries it, whatever was chosen
before; the first such request of a browser is recorded in the ledger as a signal.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from django.utils.functional import SimpleLazyObject

from consent.models import ConsentPurpose

logger = logging.getLogger("consent")
COOKIE_SALT = "consent.cookie"
GPC = "Global Privacy Control"
DNT = "Do Not Track"


def browser_signal(request: HttpRequest) -> str:
    """The privacy signal the request carries ("" for none). GPC wins when both are sent."""
    if str(request.META.get("HTTP_SEC_GPC", "")).strip() == "1":
        return GPC
    if str(request.META.get("HTTP_DNT", "")).strip() == "1":
        return DNT
    return ""


@dataclass
class CookieConsent:
    """What this browser may get, decided once per request (``request.consent``)."""

    visitor: str = ""
    choices: dict[str, bool] = field(default_factory=dict)
    decided_by: str = ""  # "", "banner", "form" or "signal"
    signal: str = ""
    notice_dismissed: bool = False

    def allows(self, purpose: str) -> bool:
        return not self.signal and self.choices.get(purpose, False)

    @property
    def show_banner(self) -> bool:
        # A choice made only by a signal that is no longer sent is no choice: ask.
        return not self.signal and self.decided_by in ("", "signal")

    @property
    def needs_signal_record(self) -> bool:
        return bool(self.signal) and self.decided_by != "signal"

    @property
    def show_signal_notice(self) -> bool:
        return bool(self.signal) and not self.notice_dismissed

    def cookie_value(self) -> str:
        payload = {
            "v": self.visitor,
            "c": {key: int(val) for key, val in sorted(self.choices.items())},
            "by": self.decided_by,
            "ack": int(self.notice_dismissed),
        }
        return signing.dumps(payload, salt=COOKIE_SALT, compress=False)


def new_visitor_id() -> str:
    return secrets.token_urlsafe(16)


def cookie_consent_read(request: HttpRequest) -> CookieConsent:
    """The browser's stored choice; a missing, forged or expired cookie is no choice."""
    signal = browser_signal(request)
    raw = request.COOKIES.get(settings.CONSENT_COOKIE_NAME, "")
    if not raw:
        return CookieConsent(signal=signal)
    try:
        data = signing.loads(raw, salt=COOKIE_SALT, max_age=settings.CONSENT_COOKIE_DAYS * 86400)
        choices = {str(k): bool(v) for k, v in data["c"].items() if k in ConsentPurpose.COOKIE_KEYS}
        return CookieConsent(
            visitor=str(data["v"])[:40],
            choices=choices,
            decided_by=str(data.get("by", ""))[:10],
            signal=signal,
            notice_dismissed=bool(data.get("ack")),
        )
    except (signing.BadSignature, KeyError, TypeError, AttributeError, ValueError):
        return CookieConsent(signal=signal)


def cookie_consent_store(response: HttpResponse, consent: CookieConsent) -> None:
    response.set_cookie(
        settings.CONSENT_COOKIE_NAME,
        consent.cookie_value(),
        max_age=settings.CONSENT_COOKIE_DAYS * 86400,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


class ConsentMiddleware:
    """Puts ``request.consent`` on every request; records a browser signal once per browser."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        consent = cookie_consent_read(request)
        request.consent = consent  # type: ignore[attr-defined]
        response = self.get_response(request)
        patch_vary_headers(response, ("Sec-GPC", "DNT"))
        if consent.needs_signal_record and _is_page(request, response):
            from consent.services.cookies import cookie_signal_record

            try:
                recorded = cookie_signal_record(request=request, consent=consent)
            except DatabaseError:
                # The signal is honoured anyway (it is read on every request); only the
                # evidence is missing, so no cookie is set and the next page tries again.
                logger.exception("could not record a browser privacy signal")
                recorded = False
            if recorded:
                cookie_consent_store(response, consent)
        return response


def _is_page(request: HttpRequest, response: HttpResponse) -> bool:
    # Only pages a person looks at: not static files, downloads, redirects or errors, so
    # a signal costs one ledger write per browser, not one per request.
    return (
        request.method == "GET"
        and response.status_code == 200
        and str(response.get("Content-Type", "")).startswith("text/html")
    )


def cookie_context(request: HttpRequest) -> dict[str, Any]:
    """Template context: the banner and the first-party integration points (no tracker ships)."""
    from consent.selectors import cookie_purposes

    consent = getattr(request, "consent", None) or CookieConsent(signal=browser_signal(request))
    return {
        "cookie_consent": consent,
        # Lazy: only a page that shows the banner pays the query.
        "cookie_purposes": SimpleLazyObject(lambda: list(cookie_purposes())),
        "analytics_script_url": settings.ANALYTICS_SCRIPT_URL
        if consent.allows(ConsentPurpose.ANALYTICS)
        else "",
        "advertising_script_url": settings.ADVERTISING_SCRIPT_URL
        if consent.allows(ConsentPurpose.ADVERTISING)
        else "",
    }
