"""Where a profile page view spends its time, measured in this process (no HTTP).

Each part is timed on its own, many times, and reported as the median in milliseconds:
the session load, the user lookup, the header's unread count, the 2FA lookup, building
the page's forms, rendering the template, and the whole request through Django's test
client (so the rest, middleware and response handling, is the difference). A bare
request through the same client gives Django's own floor. These are CPU-bound numbers
on a quiet process; the load test says what they add up to under concurrency.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

REPEAT = 60
QUICK_REPEAT = 15


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 3)


def profile_page_breakdown(
    *, email: str, session_key: str, host: str, profile_path: str, bare_path: str, quick: bool
) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.template.loader import render_to_string
    from django.test import Client, RequestFactory

    from accounts.models import User
    from accounts.selectors import notification_unread_count
    from accounts.services.twofactor import totp_device_for
    from accounts.views.profile import _profile_context

    repeat = QUICK_REPEAT if quick else REPEAT
    user = User.objects.get(email=email)
    request = RequestFactory().get(profile_path, HTTP_HOST=host)
    request.user = user
    request.session = SessionStore(session_key)
    context = _profile_context(request)

    client = Client(HTTP_HOST=host)
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    anonymous = Client(HTTP_HOST=host)
    parts = {
        "session_load_ms": lambda: SessionStore(session_key).load(),
        "user_lookup_ms": lambda: User.objects.get(pk=user.pk),
        "unread_count_ms": lambda: notification_unread_count(user=user),
        "totp_lookup_ms": lambda: totp_device_for(user),
        "forms_context_ms": lambda: _profile_context(request),
        "template_render_ms": lambda: render_to_string(
            "accounts/profile.html", context, request=request
        ),
        "whole_request_ms": lambda: client.get(profile_path),
        "bare_request_ms": lambda: anonymous.get(bare_path),
    }
    result: dict[str, Any] = {name: _median_ms(fn, repeat) for name, fn in parts.items()}
    measured = sum(
        result[k]
        for k in ("session_load_ms", "user_lookup_ms", "forms_context_ms", "template_render_ms")
    )
    # The template render includes the unread count (lazy, evaluated in the header) and the
    # forms context includes the 2FA lookup, so those two are not added again.
    result["rest_ms"] = round(max(result["whole_request_ms"] - measured, 0.0), 3)
    result["repeat"] = repeat
    result["note"] = (
        "medians in this process (no HTTP); template_render_ms includes unread_count_ms, "
        "forms_context_ms includes totp_lookup_ms; rest_ms = middleware, request log, "
        "response handling"
    )
    return result
