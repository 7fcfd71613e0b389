"""Settings for the benchmarks: the real site, plus a bare view to compare against.

Everything else (middleware, sessions, cache, templates) is config.settings unchanged, so
a benchmark measures what production-like requests cost. The harness points DATABASE_URL
at its own throw-away database and CACHE_PREFIX at a per-run prefix before this loads.
"""

from __future__ import annotations

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.bench.urls"
WSGI_APPLICATION = "tests.bench.wsgi.application"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
