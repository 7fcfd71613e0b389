"""Throttles per user and per anonymous client, keyed by the site's one idea of the client IP.

DRF's own throttles keep a list of request times per client in the cache (read it,
append, write it back: two round trips and a payload that grows with the rate, and two
concurrent requests can both read the old list). Ours count in a window that opens at a
client's first request: one Redis round trip (SET NX EX + INCR, pipelined), atomic, and
the key's TTL is the honest Retry-After. Keys use the cache's own prefix and naming, so
``cache.delete(throttle_key(...))`` resets one.

DRF's ident trusts X-Forwarded-For; ours reads only the header the proxy overwrites
(common.http.client_ip), so a client cannot rotate addresses to escape a limit. Rates
are read per request, so a changed setting applies at once (and in tests).
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from common.http import client_ip
from common.redisclient import redis_client

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'10/min' -> (10, 60): requests allowed, and the window in seconds."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0]]


def throttle_key(scope: str, ident: str) -> str:
    return f"throttle_{scope}_{ident}"


def _hit(key: str, period: int) -> tuple[int, float]:
    """Count one request in *key*'s window; the count and the seconds the window has left."""
    client = redis_client(timeout=1.0)
    if client is None:  # no Redis (a bare `manage.py` run): the cache API, less atomic
        cache.add(key, 0, timeout=period)
        try:
            return int(cache.incr(key)), float(period)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=period)
            return 1, float(period)
    raw = cache.make_key(key)
    pipe = client.pipeline(transaction=False)
    pipe.set(raw, 0, ex=period, nx=True)
    pipe.incr(raw)
    pipe.pttl(raw)
    _created, count, ttl_ms = pipe.execute()
    if int(ttl_ms) < 0:  # a window key without expiry would block for good: give it one
        client.expire(raw, period)
        ttl_ms = period * 1000
    return int(count), int(ttl_ms) / 1000


def _authed(request: Request) -> bool:
    return bool(request.user and request.user.is_authenticated)


class _Throttle(BaseThrottle):
    scope = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return str(rate) if rate else None

    def get_ident(self, request: Request) -> str:
        return client_ip(request._request) or "unknown"

    def _key(self, request: Request) -> str:
        if _authed(request):
            return f"user:{request.user.pk}"
        return f"ip:{self.get_ident(request)}"

    def ident_for(self, request: Request) -> str | None:
        """Whom this request counts against, or None when this throttle does not apply.

        By default a stricter budget for one kind of action (writes only), on top of the
        general throttles, which override this.
        """
        return None if request.method in SAFE_METHODS else self._key(request)

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = self.get_rate()
        ident = self.ident_for(request) if rate else None
        if rate is None or ident is None:
            return True
        allowed, period = parse_rate(rate)
        count, left = _hit(throttle_key(self.scope, ident), period)
        if count <= allowed:
            return True
        self._wait = max(left, 0.001)
        return False

    def wait(self) -> float | None:
        return self._wait


class UserThrottle(_Throttle):
    scope = "user"

    def ident_for(self, request: Request) -> str | None:
        return self._key(request) if _authed(request) else None


class AnonThrottle(_Throttle):
    scope = "anon"

    def ident_for(self, request: Request) -> str | None:
        return None if _authed(request) else self._key(request)


class LoginThrottle(_Throttle):
    scope = "login"

    def ident_for(self, request: Request) -> str | None:
        # Sign-in is throttled by address whoever asks: the caller is not yet anyone.
        return None if request.method in SAFE_METHODS else f"ip:{self.get_ident(request)}"


class UploadThrottle(_Throttle):
    scope = "upload"


class DsrThrottle(_Throttle):
    scope = "dsr"


class VerifyThrottle(_Throttle):
    scope = "verify"


def throttles(*extra: type[BaseThrottle]) -> list[type[BaseThrottle]]:
    """The general throttles plus stricter ones, for a view's ``throttle_classes``."""
    return [UserThrottle, AnonThrottle, *extra]
