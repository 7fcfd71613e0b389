from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.privacy import USER_FIELDS


def privacy_policy(request: HttpRequest) -> HttpResponse:
    """What the site collects today, rendered from the accounts app's declarations.

    The consent issue replaces this with the page generated from the full registry and
    the processing register; until then it must not claim more than the code does.
    """
    rows = sorted(USER_FIELDS.items(), key=lambda item: item[1][0])
    return render(
        request,
        "privacy.html",
        {
            "fields": rows,
            "unverified_days": settings.UNVERIFIED_ACCOUNT_DAYS,
            "lockout_failures": settings.AXES_FAILURE_LIMIT,
        },
    )
