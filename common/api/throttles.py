"""Throttles per user and per anonymous client, keyed by the site's one idea of the client IP.

DRF's own ident trusts X-Forwarded-For; ours reads only the header the proxy overwrites
(common.http.client_ip), so a client cannot rotate addresses to escape a limit. Rates
are read per request, so a changed setting applies at once (and in tests).
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from common.http import client_ip


class _Throttle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return str(rate) if rate else None

    def get_ident(self, request: Request) -> str:
        return client_ip(request._request) or "unknown"

    def _key(self, request: Request) -> str:
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"ip:{self.get_ident(request)}"


class UserThrottle(_Throttle):
    scope = "user"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": self._key(request)}


class AnonThrottle(_Throttle):
    scope = "anon"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self._key(request)}


class _Scoped(_Throttle):
    """A stricter budget for one kind of action, on top of the general one."""

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        return self.cache_format % {"scope": self.scope, "ident": self._key(request)}


class LoginThrottle(_Scoped):
    scope = "login"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        # Sign-in is throttled by address whoever asks: the caller is not yet anyone.
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"ip:{self.get_ident(request)}"}


class UploadThrottle(_Scoped):
    scope = "upload"


class DsrThrottle(_Scoped):
    scope = "dsr"


class VerifyThrottle(_Scoped):
    scope = "verify"


def throttles(*extra: type[SimpleRateThrottle]) -> list[type[SimpleRateThrottle]]:
    """The general throttles plus stricter ones, for a view's ``throttle_classes``."""
    return [UserThrottle, AnonThrottle, *extra]
