"""Pages: the generated privacy policy (TRN-1, DSR-6), its version history and notices (CON-5).

The privacy page is rendered from the processing register (purposes, recipients,
supervisory authorities), the personal-data registry and the staff-written prose of the
version in force. Retention periods are read from the registry's rules, the same rules
(and settings) the retention engine enforces, so the page cannot promise what the code
does not do.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.privacy import USER_FIELDS
from accounts.views.common import safe_next
from consent.models import ConsentPurpose, PurposeKind, SupervisoryAuthority
from consent.selectors import (
    duration_text,
    policy_current,
    processing_purposes,
    register_holdings,
)
from consent.services.policy import (
    PolicyError,
    policy_acknowledge,
    policy_version_published_get,
    policy_versions_published,
)
from consent.services.register import recipients_published

POLICY_SEEN_COOKIE = "cf_policy_seen"


def privacy_policy(request: HttpRequest) -> HttpResponse:
    """The public privacy policy, generated (TRN-1); the current version's date on top (CON-5)."""
    purposes = list(processing_purposes().values())
    return render(
        request,
        "privacy.html",
        {
            "current": policy_current(),
            "fields": sorted(USER_FIELDS.items(), key=lambda item: item[1][0]),
            "purposes": purposes,
            "holdings": register_holdings(),
            "recipients": recipients_published(),
            "authorities": list(SupervisoryAuthority.objects.all()),
            "essential_cookies": sorted(settings.ESSENTIAL_COOKIES.items()),
            # Same name as the banner's lazy list, so a page showing both queries once.
            "cookie_purposes": list(
                ConsentPurpose.objects.filter(kind=PurposeKind.COOKIE, active=True)
            ),
            "seller_name": settings.SELLER_NAME,
            "seller_address": settings.SELLER_ADDRESS,
            "privacy_contact": settings.PRIVACY_CONTACT_EMAIL,
            "unverified_days": settings.UNVERIFIED_ACCOUNT_DAYS,
            "lockout_failures": settings.AXES_FAILURE_LIMIT,
            "lockout_for": duration_text(settings.AXES_COOLOFF_TIME),
            "log_days": settings.REQUEST_LOG_RETENTION_DAYS,
            "sweep_minutes": settings.RETENTION_INTERVAL_MINUTES,
            "notice_days": settings.POLICY_NOTICE_DAYS,
        },
    )


def policy_versions(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "consent/policy_versions.html",
        {"versions": list(policy_versions_published()), "current": policy_current()},
    )


def policy_version(request: HttpRequest, number: int) -> HttpResponse:
    version = policy_version_published_get(number=number)
    if version is None:
        raise Http404("No published version with that number.")
    current = policy_current()
    return render(
        request,
        "consent/policy_version.html",
        {"version": version, "is_current": current is not None and current.pk == version.pk},
    )


def policy_seen(request: HttpRequest) -> int:
    """The last version whose notice this browser dismissed (an essential cookie)."""
    raw = request.COOKIES.get(POLICY_SEEN_COOKIE, "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


@require_POST
def policy_notice_dismiss(request: HttpRequest) -> HttpResponse:
    """Dismiss (or, signed in, acknowledge) a version's notice. A plain form: no JS needed."""
    raw = request.POST.get("version", "")
    version = policy_version_published_get(number=int(raw)) if raw.isdigit() else None
    if version is None:
        return render(
            request,
            "error.html",
            {"title": "Unknown version", "message": "There is no such privacy policy version."},
            status=400,
        )
    response = HttpResponseRedirect(safe_next(request, reverse("privacy")))
    if request.user.is_authenticated:
        try:
            policy_acknowledge(version=version, user=request.user)
        except PolicyError as exc:  # pragma: no cover - only published versions get here
            return render(
                request, "error.html", {"title": "Not possible", "message": str(exc)}, status=400
            )
    if version.number > policy_seen(request):
        # Essential: it only remembers that this notice was dismissed (ESSENTIAL_COOKIES),
        # for as long as the notice could still show.
        ahead = max(timedelta(0), version.effective_at - timezone.now())
        response.set_cookie(
            POLICY_SEEN_COOKIE,
            str(version.number),
            max_age=int(ahead.total_seconds()) + (settings.POLICY_NOTICE_DAYS + 1) * 86400,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
    return response


urlpatterns: list[Any] = [
    path("policy/versions/", policy_versions, name="policy_versions"),
    path("policy/versions/<int:number>/", policy_version, name="policy_version"),
    path("policy/notice/dismiss/", policy_notice_dismiss, name="policy_notice_dismiss"),
]
