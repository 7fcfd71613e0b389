"""The consent API: a person's choices (CON-2..CON-4) and the public privacy data (TRN-1, CON-5).

Choices go through consent_toggle, the service behind "My privacy choices". A Sec-GPC or
DNT signal is read by ConsentMiddleware on API requests too (``request.consent``): it is
reported here, refuses the cookie purposes whatever the browser chose, and is recorded
in the ledger as the web records it (cookie_signal_record). The public endpoints are
built from the same register, registry and settings as the privacy page.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.privacy import USER_FIELDS
from common.api.errors import domain_error
from common.api.pagination import SafeCursor
from common.api.schema import errors
from common.http import RequestMeta
from consent.api.serializers import (
    ConsentPurposeSerializer,
    ConsentsSerializer,
    PolicyVersionSerializer,
    PolicyVersionSummarySerializer,
    RegisterSerializer,
)
from consent.cookies import DNT, GPC, CookieConsent, cookie_consent_read
from consent.models import (
    ConsentMethod,
    ConsentPurpose,
    ConsentState,
    PolicyVersion,
    SupervisoryAuthority,
)
from consent.selectors import (
    account_purpose,
    account_purposes,
    consent_states_for,
    cookie_purposes,
    policy_current,
    processing_purposes,
    register_holdings,
)
from consent.services.account import consent_toggle
from consent.services.cookies import cookie_signal_record
from consent.services.ledger import ConsentRefused
from consent.services.policy import policy_version_published_get, policy_versions_published
from consent.services.register import recipients_published
from dsr.models import RequestType

logger = logging.getLogger("consent")

# 409: the choice is valid input but cannot be recorded now (e.g. the newsletter needs a
# confirmed address); the message says what to do.
domain_error(ConsentRefused, status_code=409, code="consent_refused")

CONSENT_TAGS = ["consents"]
PRIVACY_TAGS = ["privacy"]


# --- A person's consents ----------------------------------------------------------------------
def _browser(request: HttpRequest) -> CookieConsent:
    """The request's cookie choice and signal, recording a signal in the ledger once (CON-4).

    ConsentMiddleware records a signal only on HTML pages; a client that only uses the
    API would never be on record, so the consent endpoints record it the same way.
    """
    consent = getattr(request, "consent", None) or cookie_consent_read(request)
    if consent.needs_signal_record:
        try:
            cookie_signal_record(request=request, consent=consent)
        except DatabaseError:
            # As on the web: the signal is honoured anyway (read on every request).
            logger.exception("could not record a browser privacy signal")
    return consent


def _purpose_row(purpose: ConsentPurpose, state: ConsentState | None) -> dict[str, Any]:
    return {
        "key": purpose.key,
        "name": purpose.name,
        "kind": purpose.kind,
        "wording": purpose.wording,
        "is_marketing": purpose.is_marketing,
        "granted": bool(state and state.granted),
        "since": state.updated_at if state else None,
        # A signal refuses only cookie purposes (consent/cookies.py), never these.
        "overridden_by_signal": False,
    }


def _consents(request: Request) -> dict[str, Any]:
    browser = _browser(request._request)
    states: dict[str, ConsentState] = {
        s.purpose.key: s for s in consent_states_for(user=request.user) if not s.target
    }
    purposes = [_purpose_row(p, states.get(p.key)) for p in account_purposes()]
    cookies = [
        {
            "key": p.key,
            "name": p.name,
            "wording": p.wording,
            "allowed": browser.allows(p.key),
            "overridden_by_signal": bool(browser.signal),
        }
        for p in cookie_purposes()
    ]
    return {"signal": browser.signal or None, "purposes": purposes, "cookies": cookies}


class ConsentList(APIView):
    @extend_schema(
        operation_id="consents_list",
        tags=CONSENT_TAGS,
        summary="Your privacy choices, and what this request's privacy signal overrides",
        description=(
            "A `Sec-GPC: 1` or `DNT: 1` header refuses analytics and advertising cookies on "
            "that request whatever was chosen (CON-4), and is recorded as evidence."
        ),
        responses={200: ConsentsSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(ConsentsSerializer(_consents(request)).data)


def _purpose(key: str) -> ConsentPurpose:
    purpose = account_purpose(key=key)
    if purpose is None:
        # As on the web: cookie and per-image purposes are not chosen here.
        raise NotFound("No such choice.")
    return purpose


class _Toggle(APIView):
    granted: bool

    def post(self, request: Request, key: str) -> Response:
        purpose = _purpose(key)
        consent_toggle(
            user=request.user,
            purpose=purpose,
            granted=self.granted,
            method=ConsentMethod.API,
            meta=RequestMeta.of(request._request),
        )
        _browser(request._request)  # a privacy signal on the request is recorded here too
        state = consent_states_for(user=request.user).filter(purpose=purpose, target="").first()
        return Response(ConsentPurposeSerializer(_purpose_row(purpose, state)).data)


_TOGGLE_ERRORS = errors(
    409, e409="`consent_refused`: cannot be recorded now (e.g. confirm your email first)."
)


class ConsentGrant(_Toggle):
    granted = True

    @extend_schema(
        operation_id="consents_grant",
        tags=CONSENT_TAGS,
        summary="Give a consent",
        description="Recorded with evidence (wording, policy version, time, address; CON-3).",
        request=None,
        responses={200: ConsentPurposeSerializer, **_TOGGLE_ERRORS},
    )
    def post(self, request: Request, key: str) -> Response:
        return super().post(request, key)


class ConsentWithdraw(_Toggle):
    granted = False

    @extend_schema(
        operation_id="consents_withdraw",
        tags=CONSENT_TAGS,
        summary="Withdraw a consent (any marketing one: all marketing, CON-2)",
        request=None,
        responses={200: ConsentPurposeSerializer, **_TOGGLE_ERRORS},
    )
    def post(self, request: Request, key: str) -> Response:
        return super().post(request, key)


# --- Public: the policy and the register ------------------------------------------------------
class _Public(APIView):
    permission_classes = [AllowAny]
    # Public reads need no identity: no session (and no CSRF), no token.
    authentication_classes: list[Any] = []


class PolicyCurrent(_Public):
    @extend_schema(
        operation_id="privacy_policy_current",
        tags=PRIVACY_TAGS,
        summary="The privacy policy version in force",
        responses={
            200: PolicyVersionSerializer,
            **errors(404, e404="No version has been published yet."),
        },
    )
    def get(self, request: Request) -> Response:
        current = policy_current()
        if current is None:
            raise NotFound("No version of the privacy policy has been published yet.")
        return Response(PolicyVersionSerializer(current, context={"current": current}).data)


class _VersionCursor(SafeCursor):
    ordering = ("-number",)


class PolicyVersionList(ListAPIView[PolicyVersion]):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    serializer_class = PolicyVersionSummarySerializer
    pagination_class = _VersionCursor

    def get_queryset(self) -> Any:
        return policy_versions_published()

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "current": policy_current()}

    @extend_schema(
        operation_id="privacy_policy_versions_list",
        tags=PRIVACY_TAGS,
        summary="Every published version, newest first (CON-5)",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class PolicyVersionDetail(_Public):
    @extend_schema(
        operation_id="privacy_policy_versions_get",
        tags=PRIVACY_TAGS,
        summary="One published version",
        parameters=[OpenApiParameter("number", int, OpenApiParameter.PATH)],
        responses={200: PolicyVersionSerializer},
    )
    def get(self, request: Request, number: int) -> Response:
        version = policy_version_published_get(number=number)
        if version is None:
            raise NotFound("No published version with that number.")
        context = {"current": policy_current()}
        return Response(PolicyVersionSerializer(version, context=context).data)


def _country(row: Any) -> Any:
    return row.country  # a django-countries Country (typed as str by the stubs)


def _register() -> dict[str, Any]:
    """The privacy page's register as data: the same selectors, registry and settings."""
    purposes = [
        {
            "key": p.key,
            "name": p.name,
            "description": p.description,
            "lawful_basis": p.basis,
            "lawful_basis_label": p.basis_label,
            "legitimate_interest": p.interest,
        }
        for p in processing_purposes().values()
    ]
    holdings = [
        {
            "model": h["label"],
            "name": str(h["name"]),
            "description": h["description"],
            "categories": h["categories"],
            "purpose": h["purpose"],
            "basis": h["basis"],
            "erasure": h["erasure"],
            "kept_until": h["kept_until"],
            "stored_files": bool(h["files"]),
            "retention": [
                {
                    "text": r["text"],
                    "action": r["action"],
                    "after": r["after"],
                    "period_seconds": int(r["period"].total_seconds()),
                    "latest_seconds": int(r["latest_period"].total_seconds()),
                    "latest": r["latest"],
                }
                for r in h["rules"]
            ],
        }
        for h in register_holdings()
    ]
    recipients = [
        {
            "name": r["recipient"].name,
            "address": r["recipient"].address,
            "role": r["recipient"].role,
            "role_label": r["recipient"].get_role_display(),
            "service": r["recipient"].service,
            "purposes": r["purposes"],
            "data_categories": r["categories"],
            "country": str(r["recipient"].country.code or ""),
            "country_name": r["country"],
            "outside_eea": r["outside_eea"],
            "transfer_safeguard": r["recipient"].transfer_safeguard,
            "transfer_safeguard_label": r["safeguard"],
            "safeguard_note": r["recipient"].safeguard_note,
        }
        for r in recipients_published()
    ]
    authorities = [
        {
            "name": a.name,
            "address": a.address,
            "country": str(_country(a).code or ""),
            "country_name": str(_country(a).name),
            "website": a.website,
            "email": a.email,
            "phone": a.phone,
            "is_lead": a.is_lead,
        }
        for a in SupervisoryAuthority.objects.all()
    ]
    return {
        "controller": {
            "name": settings.SELLER_NAME,
            "address": settings.SELLER_ADDRESS,
            "contact_email": settings.PRIVACY_CONTACT_EMAIL,
        },
        "purposes": purposes,
        "account_fields": [
            {"field": name, "category": category, "why": why}
            for name, (category, why) in sorted(USER_FIELDS.items(), key=lambda i: i[1][0])
        ],
        "holdings": holdings,
        "retention_sweep_minutes": settings.RETENTION_INTERVAL_MINUTES,
        "server_log_days": settings.REQUEST_LOG_RETENTION_DAYS,
        "recipients": recipients,
        "supervisory_authorities": authorities,
        "cookies": {
            "essential": [
                {"name": name, "purpose": why}
                for name, why in sorted(settings.ESSENTIAL_COOKIES.items())
            ],
            "with_consent": [
                {"key": p.key, "name": p.name, "wording": p.wording} for p in cookie_purposes()
            ],
            "signals_honoured": [GPC, DNT],
        },
        "rights": [{"key": key, "name": str(label)} for key, label in RequestType.choices],
    }


class Register(_Public):
    @extend_schema(
        operation_id="privacy_register",
        tags=PRIVACY_TAGS,
        summary="The processing register: purposes, data, retention, recipients (TRN-1)",
        description=(
            "Built from the same configuration as the privacy page and the retention "
            "engine: change a retention setting and this changes with it."
        ),
        responses={200: RegisterSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(RegisterSerializer(_register()).data)
