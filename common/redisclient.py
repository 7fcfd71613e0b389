"""One Redis client per address and timeout, shared by the request log and the fan-out engine.

Both talk to Redis directly (lists and Lua, not the cache API). The client is keyed by
the URL, so tests that point REDIS_URL elsewhere get a client for that address.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=8)
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def redis_client(*, timeout: float) -> redis.Redis | None:
    """The client for settings.REDIS_URL, or None when no Redis is configured."""
    url = settings.REDIS_URL
    return _client(url, timeout) if url else None
