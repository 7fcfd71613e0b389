from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.privacy import USER_FIELDS
from dsr.admin import registry_rows


def privacy_policy(request: HttpRequest) -> HttpResponse:
    """What the site collects and for how long, rendered from the personal-data registry.

    The retention periods shown are the ones the retention engine enforces: both read the
    same declarations and settings, so the page cannot promise what the code does not do.
    The consent issue adds the processing register, processors and versioned prose.
    """
    rows = sorted(USER_FIELDS.items(), key=lambda item: item[1][0])
    return render(
        request,
        "privacy.html",
        {
            "fields": rows,
            "registry": registry_rows(),
            "unverified_days": settings.UNVERIFIED_ACCOUNT_DAYS,
            "lockout_failures": settings.AXES_FAILURE_LIMIT,
            "log_days": settings.REQUEST_LOG_RETENTION_DAYS,
        },
    )


urlpatterns: list[Any] = []
