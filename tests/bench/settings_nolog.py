"""The bench settings with request logging switched off (request_log_overhead_ratio).

Identical to tests.bench.settings except that RequestLogMiddleware is not in MIDDLEWARE,
so the "off" server runs every other code path of the "on" one unchanged.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from tests.bench.settings import *  # noqa: F403
from tests.bench.settings import MIDDLEWARE as _LOGGED_MIDDLEWARE

REQUEST_LOG_MIDDLEWARE = "accounts.middleware.RequestLogMiddleware"

if REQUEST_LOG_MIDDLEWARE not in _LOGGED_MIDDLEWARE:
    # Otherwise "off" would be the same as "on" and the ratio would mean nothing.
    raise ImproperlyConfigured(f"{REQUEST_LOG_MIDDLEWARE} is not in MIDDLEWARE any more")

MIDDLEWARE = [name for name in _LOGGED_MIDDLEWARE if name != REQUEST_LOG_MIDDLEWARE]
