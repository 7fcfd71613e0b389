"""breach_kill_duplicates / breach_kill_misses: kill -9 a Celery worker mid-fan-out (BRE-1).

A few thousand accounts (BENCH_BREACH_KILL_USERS, default 4,000) are the scope of an
incident confirmed by the real service. A real Celery worker (its own process group,
prefork, 2 processes, a queue of this run only, the bench database and Redis) sends the
"dsr.breach" fan-out to a local aiosmtpd sink that waits BENCH_BREACH_KILL_DELAY_MS per
message (default 2) so the run can be cut: by default once the message is transmitted,
like a queueing MTA's commit before its "250" (BENCH_BREACH_KILL_DELAY_AT=data: the
widest window for a resend), or before it is (=rcpt). Once a quarter of the rows are
recorded SENT while others are being sent, the whole worker group gets SIGKILL.
Then, as the minute sweep would once the claim is older than FANOUT_CLAIM_TIMEOUT,
common.fanout.fanout_recover_stale settles the dead claims (the clock is moved past the
timeout instead of waiting for it), a second worker is started, a new chain is enqueued,
and the run goes on until no row is pending or sending.

Counted from the sink (envelopes per recipient) and the send records: duplicates
(messages beyond the first per recipient) and misses (recipients the sink never got,
plus rows not SENT); both must be 0. Both benchmarks share one run per bench process.

``python -m tests.bench.breach_kill PORT OUTFILE DELAY_MS data|rcpt`` runs the slow sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from tests.bench.common import BenchContext, BenchResult, free_port, log, port_open, wait_for

KIND = "dsr.breach"
DEFAULT_USERS = 4_000
QUICK_USERS = 1_500
_OUTCOME: dict[str, Any] = {}
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


# --- The slow sink (its own process) --------------------------------------------------------


class _SlowSink:
    def __init__(self, delay: float, at_data: bool) -> None:
        self.delay = delay
        self.at_data = at_data
        self.rows: list[tuple[str, list[str], str]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.delay and not self.at_data:
            await asyncio.sleep(self.delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay and self.at_data:
            await asyncio.sleep(self.delay)
        # Recorded as a server that has queued the message: accepted even if the client
        # dies before it reads the "250" (the window the engine's docstring describes).
        head = (envelope.original_content or b"").partition(b"\r\n\r\n")[0]
        found = _MESSAGE_ID.search(head)
        message_id = found.group(1).decode("ascii", "replace") if found else ""
        self.rows.append((envelope.mail_from, list(envelope.rcpt_tos), message_id))
        return "250 OK"


def sink_main(argv: list[str]) -> int:
    from aiosmtpd.controller import Controller

    port, out, delay_ms, delay_at = int(argv[1]), argv[2], float(argv[3]), argv[4]
    handler = _SlowSink(delay_ms / 1000, at_data=delay_at == "data")
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    done = asyncio.Event()
    loop = asyncio.new_event_loop()

    def stop(*_: Any) -> None:
        loop.call_soon_threadsafe(done.set)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.run_until_complete(done.wait())
    controller.stop()
    with open(out, "w", encoding="utf-8") as fh:
        for sender, recipients, message_id in handler.rows:
            for recipient in recipients:
                fh.write(f"{sender}\t{recipient}\t{message_id}\n")
    return 0


# --- Processes --------------------------------------------------------------------------------


def _start(ctx: BenchContext, cmd: list[str], env: dict[str, str], log_name: str) -> Any:
    out = open(ctx.var / log_name, "ab")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        cmd, cwd=ctx.root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(proc: Any, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal the process group this bench started (its own session), then wait."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _worker(ctx: BenchContext, env: dict[str, str], queue: str, n: int) -> Any:
    cmd = [ctx.python, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-c", "2"]
    cmd += ["--pool", "prefork", "-l", "WARNING", "-n", f"breachkill{n}-{queue}@%h"]
    cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return _start(ctx, cmd, env, f"breach-kill-worker{n}.log")


def _counts(incident_id: int) -> dict[str, int]:
    from django.db.models import Count

    from dsr.models import IncidentRecipient

    rows = IncidentRecipient.objects.filter(incident_id=incident_id)
    return dict(rows.values_list("status").annotate(c=Count("pk")))


def _enqueue(incident_id: int, queue: str, chains: int) -> None:
    from consent.tasks import fanout_batch

    for _ in range(chains):
        fanout_batch.apply_async((KIND, incident_id), queue=queue)


def _wait_until(check: Any, what: str, timeout: float, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(step)
    raise RuntimeError(f"{what} did not happen within {timeout:.0f}s")


# --- The run ----------------------------------------------------------------------------------


def _run(ctx: BenchContext) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from common.fanout import fanout_recover_stale
    from dsr.models import IncidentRecipient
    from tests.bench.breach import (
        breach_kind,
        confirm_quietly,
        make_incident,
        seed_users,
        staff_user,
    )

    if connection.vendor != "postgresql" or not ctx.env.get("REDIS_URL"):
        raise RuntimeError("this benchmark needs PostgreSQL and Redis (run it with `make bench`)")
    breach_kind()
    n = int(os.environ.get("BENCH_BREACH_KILL_USERS", QUICK_USERS if ctx.quick else DEFAULT_USERS))
    delay_ms = os.environ.get("BENCH_BREACH_KILL_DELAY_MS", "2")
    # "data": the delay after the message is transmitted, as a queueing MTA's commit
    # (widest window for a resend); "rcpt": before it is transmitted.
    delay_at = os.environ.get("BENCH_BREACH_KILL_DELAY_AT", "data")
    run_id = uuid.uuid4().hex[:8]
    domain = f"kill-{run_id}.bench.example.org"
    seed_users(n, domain=domain, prefix="k")
    ids = list(User.objects.filter(email__endswith="@" + domain).values_list("pk", flat=True))
    actor = staff_user("bench-privacy@example.org")
    incident = make_incident(actor, {"rules": [{"kind": "list", "user_ids": ids}]}, "Kill run")
    confirm_quietly(incident, actor)
    expected = set(
        IncidentRecipient.objects.filter(incident=incident).values_list("email", flat=True)
    )
    total = len(expected)

    queue = f"bench-breach-kill-{run_id}"
    port = free_port()
    sink_out = ctx.var / "breach-kill-sink.tsv"
    sink_out.unlink(missing_ok=True)
    env = dict(ctx.env, CELERY_QUEUE=queue, EMAIL_URL=f"smtp://127.0.0.1:{port}")
    sink = _start(
        ctx,
        [ctx.python, "-m", "tests.bench.breach_kill", str(port), str(sink_out), delay_ms, delay_at],
        env,
        "breach-kill-sink.log",
    )
    workers: list[Any] = []
    try:
        wait_for(lambda: port_open(port), "the SMTP sink", timeout=20)
        workers.append(_worker(ctx, env, queue, 1))
        _enqueue(incident.pk, queue, chains=2)

        def mid_run() -> bool:
            counts = _counts(incident.pk)
            return counts.get("sent", 0) >= total // 4 and counts.get("sending", 0) > 0

        _wait_until(mid_run, "a quarter of the fan-out", timeout=120)
        _stop(workers[0], signal.SIGKILL)
        at_kill = _counts(incident.pk)
        log(f"  worker killed (SIGKILL) at {at_kill}")
        if not at_kill.get("sending") and not at_kill.get("pending"):
            raise RuntimeError("the fan-out ended before the kill: raise the sink's delay")

        # The sweep's recovery, with the clock past FANOUT_CLAIM_TIMEOUT.
        later = timezone.now() + timedelta(seconds=settings.FANOUT_CLAIM_TIMEOUT + 5)
        recovered = fanout_recover_stale(kind=KIND, now=later)
        log(f"  recovered {recovered}")
        workers.append(_worker(ctx, env, queue, 2))
        _enqueue(incident.pk, queue, chains=1)

        def done() -> bool:
            counts = _counts(incident.pk)
            return not counts.get("pending") and not counts.get("sending")

        _wait_until(done, "the rest of the fan-out", timeout=300, step=0.2)
    finally:
        for proc in workers:
            _stop(proc)
        _stop(sink)
        _drop_queue(ctx, queue)
    final = _counts(incident.pk)
    lines = [line.split("\t") for line in sink_out.read_text("utf-8").splitlines()]
    ours = [(f[1].lower(), f[2]) for f in lines if f[1].lower().endswith("@" + domain)]
    delivered = Counter(recipient for recipient, _ in ours)
    duplicates = sum(c - 1 for c in delivered.values() if c > 1)
    # A resend carries the same Message-ID (stable per recipient): mail clients that
    # collapse equal Message-IDs show it once. Reported, not the headline.
    distinct_ids = len({(recipient, mid) for recipient, mid in ours if mid})
    not_received = len(expected - set(delivered))
    not_sent = total - final.get("sent", 0)
    log(f"  final {final}; duplicates {duplicates}, not received {not_received}")
    return {
        "recipients": total,
        "at_kill": at_kill,
        "recovered": recovered,
        "final": final,
        "delivered_envelopes": sum(delivered.values()),
        "duplicates": duplicates,
        # Of those, resends with the same Message-ID (one in a client that collapses them).
        "duplicates_same_message_id": len(ours) - distinct_ids,
        "not_received": not_received,
        "rows_not_sent": not_sent,
        "misses": not_received + not_sent,
        "sink_delay_ms": float(delay_ms),
        "sink_delay_at": delay_at,
    }


def _drop_queue(ctx: BenchContext, queue: str) -> None:
    try:
        import redis

        client = redis.Redis.from_url(ctx.env["REDIS_URL"])
        client.delete(queue)
        client.close()
    except Exception as exc:  # cleanup must never hide the results
        log(f"could not remove the queue {queue}: {exc}")


def _outcome(ctx: BenchContext) -> dict[str, Any]:
    if "run" not in _OUTCOME:
        _OUTCOME["run"] = _run(ctx)
    return dict(_OUTCOME["run"])


def breach_kill_duplicates(ctx: BenchContext) -> BenchResult:
    outcome = _outcome(ctx)
    return BenchResult(
        name="breach_kill_duplicates",
        value=outcome["duplicates"],
        unit="messages",
        goal="<= 0",
        details=outcome,
    )


def breach_kill_misses(ctx: BenchContext) -> BenchResult:
    outcome = _outcome(ctx)
    return BenchResult(
        name="breach_kill_misses",
        value=outcome["misses"],
        unit="recipients",
        goal="<= 0",
        details=outcome,
    )


if __name__ == "__main__":
    sys.exit(sink_main(sys.argv))
