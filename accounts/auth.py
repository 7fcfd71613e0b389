from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import normalize_email


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The lockout key: case and whitespace variants of an email are one account."""
    raw = (credentials or {}).get("email") or (credentials or {}).get("username")
    if raw is None and request is not None:
        raw = request.POST.get("email", "")
    return normalize_email(str(raw or ""))
