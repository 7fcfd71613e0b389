"""profile_vs_bare_ratio: the logged-in profile page against a view that does nothing.

Both are served by the same gunicorn (same workers, same middleware, same settings) and
loaded by the same closed-loop generator at the same concurrency, alternating in rounds
so that a noisy neighbour hurts both alike. The headline is the throughput ratio
(profile rps / bare rps, median of the rounds); the profile page's p99 has its own goal.

A third load, the bare view with the logged-in cookies, shows what every logged-in page
pays before doing anything of its own; an in-process breakdown after the load says where
the profile page's own time goes (details.breakdown_ms).
"""

from __future__ import annotations

import os
import statistics
import urllib.request
from http.cookies import SimpleCookie
from typing import Any, cast

from tests.bench.breakdown import profile_page_breakdown
from tests.bench.common import LOOPBACK, BenchContext, BenchResult, Check, log
from tests.bench.server import Server, WorkerSetup, gunicorn, load

NAME = "profile_vs_bare_ratio"
PROFILE_PATH = "/accounts/profile/"
BARE_PATH = "/__bench__/bare/"
CONCURRENCY = 20
RATIO_GOAL = ">= 0.5"
P99_GOAL_MS = "< 50"
UNREAD = 5
READ = 25
MAX_REQUESTS = 200_000
ORDER = ("bare", "bare_session", "profile")

# Two gthread workers of two threads each, for a 2-core box. Two processes, one per
# core, because rendering the page is CPU-bound Python that one GIL cannot spread over
# two cores. Two threads in each, because a logged-in page also waits on five loopback
# round trips (session from Redis, the connection health check, user, 2FA device, unread
# count): a second thread fills the core while the first waits. More threads only add GIL
# hand-offs and a longer tail; sync workers cannot overlap the waits at all and close the
# connection after every response. Measured on this box (noisy: compare within a run),
# profile rps: sync x2 about 50, gthread 2x2 60-105, gthread 2x4 45-85, gthread 3x2 about
# 60. BENCH_WORKERS / BENCH_WORKER_CLASS / BENCH_THREADS override it to compare setups.
DEFAULT_SETUP = WorkerSetup(workers=2, worker_class="gthread", threads=2)


def _setup_from_env() -> WorkerSetup:
    return WorkerSetup(
        workers=int(os.environ.get("BENCH_WORKERS", DEFAULT_SETUP.workers)),
        worker_class=os.environ.get("BENCH_WORKER_CLASS", DEFAULT_SETUP.worker_class),
        threads=int(os.environ.get("BENCH_THREADS", DEFAULT_SETUP.threads)),
    )


def _make_user_session() -> tuple[str, str]:
    """A verified customer with some notifications, logged in: (email, session cookie)."""
    from django.conf import settings
    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from tests.factories import NotificationFactory, UserFactory

    user = cast(User, UserFactory(email="bench@example.com", full_name="Bench Person"))
    NotificationFactory.create_batch(UNREAD, user=user)
    NotificationFactory.create_batch(READ, user=user, read_at=timezone.now())
    client = Client()
    client.force_login(user)
    return user.email, client.cookies[settings.SESSION_COOKIE_NAME].value


def _first_get(server: Server, cookie: str) -> tuple[str, str]:
    """One real GET of the profile: proves the session works; returns (csrftoken, body)."""
    request = urllib.request.Request(server.url(PROFILE_PATH), headers={"Cookie": cookie})
    # A redirect to the login page would be followed and answer 200: check the body.
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read().decode()
        jar = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            jar.load(header)
    token = jar["csrftoken"].value if "csrftoken" in jar else ""
    return token, body


def _median(rounds: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(float(r[key]) for r in rounds), 3)


def profile_vs_bare_ratio(ctx: BenchContext) -> BenchResult:
    from django.conf import settings

    email, session_key = _make_user_session()
    setup = _setup_from_env()
    duration, warmup, rounds = (2.0, 0.5, 1) if ctx.quick else (5.0, 1.0, 3)
    cookie = f"{settings.SESSION_COOKIE_NAME}={session_key}"
    badge = f'aria-label="{UNREAD} unread"'

    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in ORDER}
    with gunicorn(ctx, setup, name=NAME) as server:
        csrf, body = _first_get(server, cookie)
        if email not in body or badge not in body:
            raise RuntimeError(
                "the profile page did not render for the bench user "
                "(redirected to log in, or no unread badge)"
            )
        if csrf:
            # A browser sends the CSRF cookie back; without it Django mints one per page.
            cookie += f"; {settings.CSRF_COOKIE_NAME}={csrf}"
        logged_in = [f"Cookie: {cookie}"]
        # "bare" carries no cookie: no session, no user, no database (the baseline).
        # "bare_session" is the same view with the logged-in cookies: what any logged-in
        # page pays before its own work (session, user lookup, request log of the user).
        targets: dict[str, tuple[str, list[str], str | None]] = {
            "bare": (BARE_PATH, [], None),
            "bare_session": (BARE_PATH, logged_in, None),
            "profile": (PROFILE_PATH, logged_in, badge),
        }
        for i in range(rounds):
            # Alternate the order, so drift in the machine's load hits all alike.
            for key in ORDER if i % 2 == 0 else ORDER[::-1]:
                path, headers, expect = targets[key]
                result = load(
                    ctx,
                    server,
                    path,
                    headers=headers,
                    concurrency=CONCURRENCY,
                    duration=duration,
                    warmup=warmup,
                    max_requests=MAX_REQUESTS,
                    expect_body=expect,
                )
                _check_clean(key, result)
                runs[key].append(result)
                log(
                    f"  round {i + 1}/{rounds} {key:12s}: {result['rps']:8.1f} rps  "
                    f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms"
                )
        pid = server.pid

    try:
        breakdown = profile_page_breakdown(
            email=email,
            session_key=session_key,
            host=LOOPBACK,
            profile_path=PROFILE_PATH,
            bare_path=BARE_PATH,
            quick=ctx.quick,
        )
    except Exception as exc:  # the breakdown explains; it must not lose the measurement
        breakdown = {"error": f"{type(exc).__name__}: {exc}"}
    log(f"  in-process breakdown: {breakdown}")

    bare, session_only, profile = runs["bare"], runs["bare_session"], runs["profile"]
    ratios = [p["rps"] / b["rps"] for b, p in zip(bare, profile, strict=True)]
    session_ratios = [s["rps"] / b["rps"] for b, s in zip(bare, session_only, strict=True)]
    ratio = round(statistics.median(ratios), 3)
    p99 = _median(profile, "p99_ms")
    details: dict[str, Any] = {
        "bare_rps": _median(bare, "rps"),
        "profile_rps": _median(profile, "rps"),
        "bare_p50_ms": _median(bare, "p50_ms"),
        "bare_p99_ms": _median(bare, "p99_ms"),
        "profile_p50_ms": _median(profile, "p50_ms"),
        "profile_p99_ms": p99,
        "round_ratios": [round(r, 3) for r in ratios],
        "bare_session_rps": _median(session_only, "rps"),
        "bare_session_p50_ms": _median(session_only, "p50_ms"),
        "bare_session_p99_ms": _median(session_only, "p99_ms"),
        "bare_session_vs_bare_ratio": round(statistics.median(session_ratios), 3),
        "concurrency": CONCURRENCY,
        "duration_s": duration,
        "warmup_s": warmup,
        "rounds": rounds,
        "worker_setup": setup.as_dict(),
        "server": f"gunicorn tests.bench.wsgi (pid {pid}, DEBUG off, loopback)",
        "loadgen": bare[0].get("loadgen", ""),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "profile_body_bytes": profile[0]["mean_body_bytes"],
        "unread_notifications": UNREAD,
        "requests": {
            "bare": "GET /__bench__/bare/ without cookies: no session, user or database",
            "bare_session": "the same view with the logged-in session and CSRF cookies",
            "profile": "GET /accounts/profile/ with the logged-in session and CSRF cookies",
        },
        "breakdown_ms": breakdown,
        "raw": runs,
    }
    return BenchResult(
        name=NAME,
        value=ratio,
        unit="x",
        goal=RATIO_GOAL,
        details=details,
        extra_checks=[Check("profile_p99_ms", p99, "ms", P99_GOAL_MS)],
    )


def _check_clean(key: str, result: dict[str, Any]) -> None:
    """A run with errors or wrong pages measures the wrong thing: refuse it."""
    problems = []
    if not result["requests"]:
        problems.append("no successful request")
    if result["unexpected_status"]:
        problems.append(f"statuses {result['statuses']}")
    if result["errors"]:
        problems.append(f"errors {result['errors']}")
    if result["body_mismatches"]:
        problems.append(f"{result['body_mismatches']} responses without the expected text")
    if problems:
        raise RuntimeError(f"{key} load run was not clean: " + "; ".join(problems))
