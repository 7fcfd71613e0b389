"""Recording a browser's cookie choices and privacy signals in the ledger (CON-3, CON-4)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest

from common.http import RequestMeta
from consent.cookies import CookieConsent, new_visitor_id
from consent.models import ConsentMethod, ConsentPurpose
from consent.services.ledger import ConsentRefused, consent_record

SIGNAL_DEDUPE_SECONDS = 24 * 3600


def _user(request: HttpRequest) -> Any:
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def cookie_signal_record(*, request: HttpRequest, consent: CookieConsent) -> bool:
    """Record the request's DNT/GPC signal as a refusal of every cookie purpose.

    Returns True when *consent* changed and the cookie should be (re)written. A client
    that never keeps cookies (a crawler) would otherwise add ledger rows on every page:
    one record per address and user agent per day is evidence enough.
    """
    meta = RequestMeta.of(request)
    fingerprint = hashlib.sha256(
        f"{meta.ip_address}|{meta.user_agent}|{consent.visitor}".encode()
    ).hexdigest()
    if not consent.visitor and not cache.add(
        f"consent:signal:{fingerprint}", 1, SIGNAL_DEDUPE_SECONDS
    ):
        return False
    consent.visitor = consent.visitor or new_visitor_id()
    with transaction.atomic():
        for key in ConsentPurpose.COOKIE_KEYS:
            consent_record(
                purpose=key,
                granted=False,
                method=ConsentMethod.SIGNAL,
                user=_user(request),
                visitor=consent.visitor,
                meta=meta,
                note=f"{consent.signal} signal sent by the browser",
                only_if_changed=True,
            )
    consent.choices = dict.fromkeys(ConsentPurpose.COOKIE_KEYS, False)
    consent.decided_by = "signal"
    return True


def cookie_choices_parse(values: Iterable[str]) -> set[str]:
    """The purposes a visitor ticked; anything unknown is refused, not ignored."""
    wanted = {v.strip() for v in values if v.strip()}
    unknown = wanted - set(ConsentPurpose.COOKIE_KEYS)
    if unknown:
        raise ConsentRefused("Unknown cookie purpose: " + ", ".join(sorted(unknown)) + ".")
    return wanted


@transaction.atomic
def cookie_choices_save(
    *,
    request: HttpRequest,
    consent: CookieConsent,
    granted: set[str],
    method: ConsentMethod,
) -> CookieConsent:
    """Record the visitor's choice for each cookie purpose; a signal turns every grant into no.

    The first choice of a browser records every purpose (a refusal is evidence too);
    later ones only what changed. The wording recorded is each purpose's current text:
    the banner and the settings page show exactly that.
    """
    if consent.signal:
        granted = set()
    first = consent.decided_by in ("", "signal") or not consent.visitor
    consent.visitor = consent.visitor or new_visitor_id()
    meta = RequestMeta.of(request)
    for key in ConsentPurpose.COOKIE_KEYS:
        consent_record(
            purpose=key,
            granted=key in granted,
            method=method,
            user=_user(request),
            visitor=consent.visitor,
            meta=meta,
            note=f"{consent.signal} signal sent by the browser" if consent.signal else "",
            only_if_changed=not first,
        )
    consent.choices = {key: key in granted for key in ConsentPurpose.COOKIE_KEYS}
    consent.decided_by = "signal" if consent.signal else "banner"
    if method == ConsentMethod.FORM and not consent.signal:
        consent.decided_by = "form"
    return consent
