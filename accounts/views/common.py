from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme


def render_form(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int | None = None
) -> HttpResponse:
    """Render a page with forms; a bound form with errors answers 400 (bad input is a 4xx)."""
    if status is None:
        has_errors = any(getattr(v, "is_bound", False) and v.errors for v in context.values())
        status = 400 if has_errors else 200
    return render(request, template, context, status=status)


def safe_next(request: HttpRequest, default: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default
