"""request_log_overhead_ratio: the logged-in profile page with request logging on vs off.

Two gunicorns of the same worker setup run side by side: "on" with the bench settings
(RequestLogMiddleware sends one JSON line per request to a Redis list), "off" with
tests.bench.settings_nolog (the same settings without that middleware). The same
closed-loop load hits /accounts/profile/ on each, first once to warm both up, then in
alternating rounds (on/off, then off/on, ...), so drift in a noisy machine's load hits
both alike. The headline is the median of the per-round throughput ratios (on rps / off
rps); the ratio of the median rps of each side is in the details too.

It also proves that "on" really logged and "off" did not: the logged lines (Redis buffer
plus any written straight to the table) are counted around every round, extra short
"on" loads without warm-up must log exactly one line per request they sent, and after
request_log_flush() the RequestLog table of the bench database holds every line. Web
processes push their lines in small batches (REQUEST_LOG_BATCH_SIZE lines, or after
REQUEST_LOG_BATCH_SECONDS), so every count waits until the last batches have arrived.
The buffer keys are removed afterwards.

Throughput on a shared 2-core box swings by tens of percent from one round to the next
whatever is measured (two servers with the *same* settings give round ratios from 0.5 to
2), so the headline needs many paired rounds, and the details add a second view: the CPU
seconds the gunicorn workers themselves used per request (from /proc), over short loads
without warm-up (two per server, alternating), where every request sent is counted. It
is free of queueing effects but not of neighbours (shared caches, steal time): read it
across runs, not as a precise figure.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from typing import Any

from tests.bench.common import BenchContext, BenchResult, log
from tests.bench.profile_page import (
    CONCURRENCY,
    MAX_REQUESTS,
    PROFILE_PATH,
    UNREAD,
    _check_clean,
    _first_get,
    _make_user_session,
    _setup_from_env,
)
from tests.bench.server import Server, gunicorn, load

NAME = "request_log_overhead_ratio"
RATIO_GOAL = ">= 0.9"
NOLOG_SETTINGS = "tests.bench.settings_nolog"
BENCH_EMAIL = "bench@example.com"  # the user profile_page._make_user_session creates
ORDER = ("on", "off")
VERIFY_DURATION_S = 3.0
WARM_UP_S = 3.0
MAX_FLUSHES = 50
SETTLE_MARGIN_S = 0.25
SETTLE_LIMIT_S = 10.0


def _user_session() -> tuple[str, str]:
    """profile_page's logged-in bench user; reused when an earlier benchmark made it."""
    from django.conf import settings
    from django.test import Client

    from accounts.models import User

    user = User.objects.filter(email__iexact=BENCH_EMAIL).first()
    if user is None:
        return _make_user_session()
    client = Client()
    client.force_login(user)
    return user.email, client.cookies[settings.SESSION_COOKIE_NAME].value


class LineCounter:
    """Request-log lines so far: the Redis buffer plus rows written to the table directly.

    Lines are written straight to the table only when Redis is unreachable, so the sum
    counts every logged request whichever way it went. A web process keeps its lines in
    a small local batch for up to REQUEST_LOG_BATCH_SECONDS before pushing them, so a
    count right after a load misses the last batches: settled() waits them out.
    """

    def __init__(self) -> None:
        from django.conf import settings

        self.key: str = settings.REQUEST_LOG_BUFFER_KEY
        self.batch_seconds = float(getattr(settings, "REQUEST_LOG_BATCH_SECONDS", 0.0))
        self.client: Any = None
        if settings.REDIS_URL:
            import redis

            self.client = redis.Redis.from_url(settings.REDIS_URL)

    def buffered(self) -> int:
        return int(self.client.llen(self.key)) if self.client is not None else 0

    def table(self) -> int:
        from accounts.models import RequestLog

        return RequestLog.objects.count()

    def total(self) -> int:
        return self.buffered() + self.table()

    def settled(self) -> int:
        """total() once the web processes' pending batches have been pushed (bounded)."""
        time.sleep(self.batch_seconds + SETTLE_MARGIN_S)
        last = self.total()
        deadline = time.monotonic() + SETTLE_LIMIT_S
        while time.monotonic() < deadline:
            time.sleep(max(SETTLE_MARGIN_S, self.batch_seconds))
            now = self.total()
            if now == last:
                break
            last = now
        return last

    def clear(self) -> None:
        if self.client is not None:
            self.client.delete(self.key, self.key + ":processing", self.key + ":lock")

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def _median(rounds: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(float(r[key]) for r in rounds), 3)


def _server_cpu_s(master_pid: int) -> float:
    """CPU seconds (user + system) used so far by a gunicorn master and its workers."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        # Fields after the parenthesised command: state, ppid, ..., utime, stime (14, 15).
        fields = stat.rsplit(")", 1)[1].split()
        if int(entry) == master_pid or int(fields[1]) == master_pid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def request_log_overhead_ratio(ctx: BenchContext) -> BenchResult:
    from django.conf import settings

    from accounts.services.requestlog import request_log_flush

    email, session_key = _user_session()
    setup = _setup_from_env()
    # More, shorter rounds than profile_page: the median of the paired ratios is what
    # cancels the drift of a noisy machine, and it needs rounds more than length.
    duration, warmup, rounds = (2.0, 0.5, 1) if ctx.quick else (4.0, 1.0, 8)
    cookie = f"{settings.SESSION_COOKIE_NAME}={session_key}"
    badge = f'aria-label="{UNREAD} unread"'
    off_ctx = dataclasses.replace(ctx, env={**ctx.env, "DJANGO_SETTINGS_MODULE": NOLOG_SETTINGS})
    counter = LineCounter()
    counter.clear()
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in ORDER}
    lines: dict[str, list[int]] = {key: [] for key in ORDER}
    try:
        with (
            gunicorn(ctx, setup, name=f"{NAME}-on") as on_server,
            gunicorn(off_ctx, setup, name=f"{NAME}-off") as off_server,
        ):
            servers: dict[str, Server] = {"on": on_server, "off": off_server}
            csrf = ""
            for key, server in servers.items():
                csrf, body = _first_get(server, cookie)
                if email not in body or badge not in body:
                    raise RuntimeError(
                        f"the profile page did not render for the bench user on the {key} "
                        "server (redirected to log in, or no unread badge)"
                    )
            if csrf:
                cookie += f"; {settings.CSRF_COOKIE_NAME}={csrf}"
            headers = [f"Cookie: {cookie}"]

            # A first load on each server before any round: without it the first rounds
            # measured a server still warming up (ratios rising from 0.5 to 1.0 over them).
            for server in servers.values():
                load(
                    ctx,
                    server,
                    PROFILE_PATH,
                    headers=headers,
                    concurrency=CONCURRENCY,
                    duration=WARM_UP_S,
                    warmup=0.0,
                    max_requests=MAX_REQUESTS,
                )
            settled = counter.settled()
            for i in range(rounds):
                for key in ORDER if i % 2 == 0 else ORDER[::-1]:
                    before = settled
                    result = load(
                        ctx,
                        servers[key],
                        PROFILE_PATH,
                        headers=headers,
                        concurrency=CONCURRENCY,
                        duration=duration,
                        warmup=warmup,
                        max_requests=MAX_REQUESTS,
                        expect_body=badge,
                    )
                    _check_clean(key, result)
                    settled = counter.settled()
                    logged = settled - before
                    runs[key].append(result)
                    lines[key].append(logged)
                    log(
                        f"  round {i + 1}/{rounds} logging {key:3s}: {result['rps']:8.1f} rps  "
                        f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
                        f"{logged} lines logged for {result['requests']} recorded requests"
                    )

            # Without warm-up every request the generator sends is recorded, so the lines
            # the "on" server logs must match its count exactly, and the workers' CPU time
            # divides by an exact number of requests.
            verify: dict[str, list[dict[str, Any]]] = {key: [] for key in ORDER}
            for key in [*ORDER, *ORDER[::-1]] if not ctx.quick else ORDER:
                server = servers[key]
                before, cpu_before = settled, _server_cpu_s(server.pid)
                result = load(
                    ctx,
                    server,
                    PROFILE_PATH,
                    headers=headers,
                    concurrency=CONCURRENCY,
                    duration=VERIFY_DURATION_S,
                    warmup=0.0,
                    max_requests=MAX_REQUESTS,
                    expect_body=badge,
                )
                _check_clean(f"verify {key}", result)
                settled = counter.settled()
                # Read after the settling wait: it includes the timer's batch pushes.
                cpu = _server_cpu_s(server.pid) - cpu_before
                figures = {
                    "requests": int(result["requests"]),
                    "lines": settled - before,
                    "rps": result["rps"],
                    "server_cpu_s": round(cpu, 2),
                    "cpu_ms_per_request": round(cpu * 1000 / max(1, result["requests"]), 3),
                }
                verify[key].append(figures)
                log(f"  no-warm-up load, logging {key:3s}: {figures}")
            on_pid, off_pid = on_server.pid, off_server.pid

        buffered = counter.buffered()
        table_before = counter.table()
        flushed = 0
        for _ in range(MAX_FLUSHES):
            written = request_log_flush()
            flushed += written
            if not written and not counter.buffered():
                break
        table_after = counter.table()
        left_in_buffer = counter.buffered()
    finally:
        counter.clear()
        counter.close()

    on_sent_recorded = sum(int(r["requests"]) for r in runs["on"])
    problems = []
    for figures in verify["on"]:
        if figures["lines"] != figures["requests"]:
            problems.append(
                f"the 'on' server logged {figures['lines']} lines for "
                f"{figures['requests']} requests"
            )
    if any(lines["off"]) or any(f["lines"] for f in verify["off"]):
        problems.append(f"the 'off' server logged lines: {lines['off']}, {verify['off']}")
    if any(n < int(r["requests"]) for n, r in zip(lines["on"], runs["on"], strict=True)):
        problems.append(f"an 'on' round logged fewer lines than requests: {lines['on']}")
    if table_after - table_before != buffered:
        problems.append(
            f"the flush wrote {table_after - table_before} rows for {buffered} buffered lines"
        )
    if problems:
        raise RuntimeError("request logging did not behave: " + "; ".join(problems))

    on, off = runs["on"], runs["off"]
    on_cpu, off_cpu = (
        round(statistics.median(f["cpu_ms_per_request"] for f in verify[key]), 3) for key in ORDER
    )
    ratios = [a["rps"] / b["rps"] for a, b in zip(on, off, strict=True)]
    ratio = round(statistics.median(ratios), 3)
    details: dict[str, Any] = {
        "on_rps": _median(on, "rps"),
        "off_rps": _median(off, "rps"),
        "on_p50_ms": _median(on, "p50_ms"),
        "off_p50_ms": _median(off, "p50_ms"),
        "on_p99_ms": _median(on, "p99_ms"),
        "off_p99_ms": _median(off, "p99_ms"),
        "round_ratios": [round(r, 3) for r in ratios],
        "ratio_of_median_rps": round(_median(on, "rps") / _median(off, "rps"), 3),
        "on_cpu_ms_per_request": on_cpu,
        "off_cpu_ms_per_request": off_cpu,
        "cpu_per_request_off_vs_on": round(off_cpu / on_cpu, 3) if on_cpu else None,
        "no_warmup_loads": verify,
        "on_round_rps": [r["rps"] for r in on],
        "off_round_rps": [r["rps"] for r in off],
        "logging": {
            "on_requests_recorded": on_sent_recorded,
            "on_lines_logged": sum(lines["on"]),
            "on_lines_per_round": lines["on"],
            "on_lines_note": "a round's lines include its warm-up requests, not recorded",
            "off_lines_logged": sum(lines["off"]),
            "verify_requests_sent": sum(f["requests"] for f in verify["on"]),
            "verify_lines_logged": sum(f["lines"] for f in verify["on"]),
            "buffer_lines_before_flush": buffered,
            "flushed_rows": flushed,
            "request_log_table_rows": table_after,
            "left_in_buffer_after_flush": left_in_buffer,
            "buffer_key_removed": True,
            "batch_size": getattr(settings, "REQUEST_LOG_BATCH_SIZE", 1),
            "batch_seconds": counter.batch_seconds,
            "counting": "each count waits out the web processes' pending batches",
        },
        "concurrency": CONCURRENCY,
        "duration_s": duration,
        "warmup_s": warmup,
        "rounds": rounds,
        "worker_setup": setup.as_dict(),
        "servers": {
            "on": f"gunicorn tests.bench.wsgi, tests.bench.settings (pid {on_pid})",
            "off": f"gunicorn tests.bench.wsgi, {NOLOG_SETTINGS} (pid {off_pid})",
        },
        "request": "GET /accounts/profile/ with the logged-in session and CSRF cookies",
        "loadgen": on[0].get("loadgen", ""),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "raw": runs,
    }
    return BenchResult(name=NAME, value=ratio, unit="x", goal=RATIO_GOAL, details=details)
