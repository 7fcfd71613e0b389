"""campaign_vs_smtplib_ratio: a newsletter campaign against a bare smtplib loop (CON-1).

On PostgreSQL, in the bench database: N subscribers (default 100,000; --quick or
BENCH_CAMPAIGN_SUBSCRIBERS for fewer), each confirmed with a consent in the ledger, made by
server-side INSERT ... SELECT over generate_series. A campaign is started with the real
service (campaign_start: one INSERT ... SELECT of the send rows); then 10% of the
subscribers withdraw (ledger events + current state, as marketing_optout leaves them),
so only the check at send time can keep them out. The campaign is sent by the real batch
code (common/fanout.py ``fanout_run_batch``, the function the Celery task calls), batch
after batch in this process, through Django's SMTP backend to a local aiosmtpd sink
running in its own process, whose handler only records envelopes.

The floor: a bare smtplib loop over one connection to the same sink, sending messages
rendered beforehand by the same template code (no database, no rendering while timed),
BENCH_CAMPAIGN_FLOOR messages (default 30,000: the sink's rate is the limit, so a sample
measures it), sent in slices between the campaign's batches over a connection of its
own, so that both see the same machine while other load comes and goes.

Headline: (campaign messages/s) / (floor messages/s), goal >= 0.7. Also: SQL queries per
batch (the largest, over all batches; and the spread between full batches, which must be
0: constant, not per recipient), withdrawn recipients that reached the sink (must be 0),
and consenting recipients that did not (must be 0).
"""

from __future__ import annotations

import cProfile
import logging
import os
import smtplib
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.bench.common import (
    BenchContext,
    BenchResult,
    Check,
    free_port,
    log,
    port_open,
    wait_for,
)

NAME = "campaign_vs_smtplib_ratio"
GOAL = ">= 0.7"
DEFAULT_SUBSCRIBERS = 100_000
QUICK_SUBSCRIBERS = 5_000
DEFAULT_FLOOR = 30_000
WITHDRAWN_EVERY = 10  # every 10th subscriber withdraws: 10%
DOMAIN = "bench.example.org"
FLOOR_SENDER = "floor@localhost"


@contextmanager
def _sink(ctx: BenchContext) -> Iterator[tuple[int, Path]]:
    port = free_port()
    out = ctx.var / "campaign-sink.tsv"
    out.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [ctx.python, "-m", "tests.bench.smtp_sink", str(port), str(out)],
        cwd=ctx.root,
        env=ctx.env,
        start_new_session=True,
    )
    try:
        wait_for(lambda: port_open(port), "the SMTP sink", timeout=20)
        yield port, out
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _sink_rows(out: Path) -> list[tuple[str, str]]:
    rows = []
    for line in out.read_text(encoding="utf-8").splitlines():
        sender, _, recipient = line.partition("\t")
        rows.append((sender, recipient.lower()))
    return rows


def _populate(n: int) -> dict[str, int]:
    """N confirmed subscribers with a granted consent each: three INSERT ... SELECTs."""
    from django.db import connection

    from consent.models import ConsentPurpose
    from consent.services.ledger import consent_text_get
    from consent.services.marketing import marketing_wording

    purpose = ConsentPurpose.objects.get(key=ConsentPurpose.MARKETING_EMAIL).pk
    wording = consent_text_get(text=marketing_wording()).pk
    params = {"n": n, "purpose": purpose, "wording": wording, "domain": DOMAIN}
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO consent_consentevent (id, created_at, subject, user_id, email, visitor,
                purpose_id, target, granted, policy_version_id, wording_id, method,
                ip_address, user_agent, actor_id, note)
            SELECT g, now() - interval '30 days', 'e:s' || g || '@' || %(domain)s, NULL,
                   's' || g || '@' || %(domain)s, '', %(purpose)s, '', true, NULL,
                   %(wording)s, 'email_link', '198.51.100.1', 'bench', NULL, ''
            FROM generate_series(1, %(n)s) AS g
            """,
            params,
        )
        cur.execute(
            """
            INSERT INTO consent_consentstate (subject, user_id, email, purpose_id, target,
                granted, event_id, updated_at)
            SELECT 'e:s' || g || '@' || %(domain)s, NULL, 's' || g || '@' || %(domain)s,
                   %(purpose)s, '', true, g, now() - interval '30 days'
            FROM generate_series(1, %(n)s) AS g
            """,
            params,
        )
        cur.execute(
            """
            INSERT INTO consent_subscriber (created_at, updated_at, email, user_id,
                consent_subject, status, wording_id, policy_version_id, requested_at,
                confirmation_sent_at, confirmed_at, unsubscribed_at)
            SELECT now() - interval '30 days', now() - interval '30 days',
                   's' || g || '@' || %(domain)s, NULL, 'e:s' || g || '@' || %(domain)s,
                   'confirmed', %(wording)s, NULL, now() - interval '30 days',
                   now() - interval '30 days', now() - interval '30 days', NULL
            FROM generate_series(1, %(n)s) AS g
            """,
            params,
        )
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('consent_consentevent', 'id'), %(n)s)", params
        )
        cur.execute("ANALYZE consent_consentevent, consent_consentstate, consent_subscriber")
    return params


def _withdraw(n: int, params: dict[str, Any]) -> int:
    """Every 10th subscriber withdraws now: an event each, and the state follows it."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO consent_consentevent (id, created_at, subject, user_id, email, visitor,
                purpose_id, target, granted, policy_version_id, wording_id, method,
                ip_address, user_agent, actor_id, note)
            SELECT %(n)s + g, now(), 'e:s' || g || '@' || %(domain)s, NULL,
                   's' || g || '@' || %(domain)s, '', %(purpose)s, '', false, NULL,
                   %(wording)s, 'email_link', '198.51.100.2', 'bench', NULL, 'unsubscribe link'
            FROM generate_series(1, %(n)s) AS g WHERE g %% %(every)s = 0
            """,
            {**params, "every": WITHDRAWN_EVERY},
        )
        cur.execute(
            """
            UPDATE consent_consentstate SET granted = false, event_id = %(n)s + g.g,
                updated_at = now()
            FROM generate_series(1, %(n)s) AS g(g)
            WHERE g.g %% %(every)s = 0 AND subject = 'e:s' || g.g || '@' || %(domain)s
            """,
            {**params, "every": WITHDRAWN_EVERY},
        )
        withdrawn = int(cur.rowcount)
        cur.execute("ANALYZE consent_consentstate")
    return withdrawn


def _floor(smtp: smtplib.SMTP, messages: list[tuple[str, bytes]]) -> float:
    """Seconds for a bare smtplib loop to send *messages* over one open connection."""
    started = time.perf_counter()
    for recipient, raw in messages:
        smtp.sendmail(FLOOR_SENDER, [recipient], raw)
    return time.perf_counter() - started


class _WarningCount(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextmanager
def _query_counter() -> Iterator[list[int]]:
    from django.db import connection

    counter = [0]

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any) -> Any:
        counter[0] += 1
        return execute(sql, params, many, ctx)

    with connection.execute_wrapper(count):
        yield counter


def campaign_vs_smtplib_ratio(ctx: BenchContext) -> BenchResult:
    from django.conf import settings
    from django.db import connection
    from django.db.models import Count

    from accounts.models import User
    from common.fanout import fanout_run_batch
    from consent.emails import campaign_template
    from consent.models import Campaign, CampaignSend, CampaignStatus
    from consent.services import campaigns

    n = int(
        os.environ.get(
            "BENCH_CAMPAIGN_SUBSCRIBERS", QUICK_SUBSCRIBERS if ctx.quick else DEFAULT_SUBSCRIBERS
        )
    )
    floor_n = min(int(os.environ.get("BENCH_CAMPAIGN_FLOOR", DEFAULT_FLOOR)), n * 9 // 10)
    if connection.vendor != "postgresql":
        raise RuntimeError("this benchmark needs PostgreSQL (run it with `make bench`)")

    settings.SELLER_NAME = "Bench Photo Ltd"
    settings.SELLER_ADDRESS = "1 Bench Street\nDublin\nIreland"
    settings.SITE_URL = "https://photos.example.org"
    batch_size = int(settings.MARKETING_BATCH_SIZE)

    started = time.monotonic()
    params = _populate(n)
    log(f"  {n:,} subscribers with consent in {time.monotonic() - started:.1f}s")
    staff = User.objects.create_superuser("bench-marketing@example.org", "x" * 20)
    campaign = Campaign.objects.create(
        subject="Spring offer: passport photos at half price",
        body="Passport photos at half price this week.\n\n" + "Bring a friend. " * 40,
        created_by=staff,
    )

    with _sink(ctx) as (port, sink_out):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""

        # The floor's messages: the same template, the same recipients (consenting ones).
        template = campaign_template(campaign=campaign)
        sample = [g for g in range(1, n + 1) if g % WITHDRAWN_EVERY][:floor_n]
        floor_messages = [
            (
                f"s{g}@{DOMAIN}",
                template.message(item_id=g, subscriber_id=g, email_address=f"s{g}@{DOMAIN}").raw,
            )
            for g in sample
        ]
        # The floor runs in slices between the campaign's batches, over its own
        # connection, so both see the same machine (other load on a shared host comes
        # and goes within seconds).
        floor_conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
        floor_conn.ehlo()
        slices = max(n * 9 // 10 // batch_size, 1)
        slice_size = max(len(floor_messages) // slices, 1)
        floor_s = 0.0
        floor_sent = 0

        def floor_slice() -> None:
            nonlocal floor_s, floor_sent
            chunk = floor_messages[floor_sent : floor_sent + slice_size]
            floor_s += _floor(floor_conn, chunk)
            floor_sent += len(chunk)

        floor_slice()

        # The campaign: start (real service), withdrawals, then every batch until done.
        # The bench drives the batches itself, so nothing is enqueued for a worker.
        enqueue, campaigns.fanout_enqueue = campaigns.fanout_enqueue, lambda **_: None
        try:
            t0 = time.perf_counter()
            created = campaigns.campaign_start(campaign=campaign, actor=staff)
            start_s = time.perf_counter() - t0
        finally:
            campaigns.fanout_enqueue = enqueue
        withdrawn = _withdraw(n, params)
        log(f"  started ({created:,} send rows in {start_s:.2f}s); {withdrawn:,} withdrew")

        # The crash journal must really be written during the run (not silently off).
        warnings = _WarningCount()
        logging.getLogger("common.fanout").addHandler(warnings)
        per_batch: list[tuple[int, int]] = []  # (claimed, queries)
        profile_to = os.environ.get("BENCH_CAMPAIGN_PROFILE", "")
        profiler = cProfile.Profile() if profile_to else None
        send_s = 0.0
        cpu0 = time.process_time()
        while True:
            if profiler is not None:
                profiler.enable()
            t0 = time.perf_counter()
            with _query_counter() as queries:
                result = fanout_run_batch(kind=campaigns.KIND, group_id=campaign.pk)
            send_s += time.perf_counter() - t0
            if profiler is not None:
                profiler.disable()
            if result.claimed == 0:
                break
            per_batch.append((result.claimed, queries[0]))
            if floor_sent < len(floor_messages):
                floor_slice()
        # This process's own CPU while batches and floor slices ran (both included).
        busy_cpu_s = time.process_time() - cpu0
        while floor_sent < len(floor_messages):
            floor_slice()
        floor_conn.quit()
        logging.getLogger("common.fanout").removeHandler(warnings)
        if profiler is not None:
            profiler.dump_stats(profile_to)
    rows = _sink_rows(sink_out)

    campaign.refresh_from_db()
    ours = [r for s, r in rows if s != FLOOR_SENDER]
    delivered = len(ours)
    withdrawn_addresses = {f"s{g}@{DOMAIN}" for g in range(WITHDRAWN_EVERY, n + 1, WITHDRAWN_EVERY)}
    reached_withdrawn = sum(1 for r in ours if r in withdrawn_addresses)
    expected = n - len(withdrawn_addresses)
    missing = expected - len(set(ours) - withdrawn_addresses)
    duplicates = delivered - len(set(ours))
    statuses = dict(
        CampaignSend.objects.filter(campaign=campaign).values_list("status").annotate(c=Count("pk"))
    )

    ours_rate = delivered / (start_s + send_s)
    floor_rate = floor_sent / floor_s
    ratio = ours_rate / floor_rate
    full = [q for claimed, q in per_batch if claimed == batch_size]
    max_queries = max(q for _, q in per_batch) if per_batch else 0
    spread = (max(full) - min(full)) if full else 0
    log(
        f"  campaign: {delivered:,} messages in {start_s + send_s:.1f}s = {ours_rate:,.0f}/s; "
        f"floor {floor_rate:,.0f}/s; ratio {ratio:.2f}; {len(per_batch)} batches, "
        f"queries per batch {min(q for _, q in per_batch)}-{max_queries}; "
        f"CPU {busy_cpu_s:.1f}s"
    )
    return BenchResult(
        name=NAME,
        value=round(ratio, 3),
        unit="x",
        goal=GOAL,
        details={
            "subscribers": n,
            "withdrawn": len(withdrawn_addresses),
            "campaign_messages": delivered,
            "campaign_messages_per_s": round(ours_rate, 1),
            "campaign_start_s": round(start_s, 2),
            "campaign_send_s": round(send_s, 1),
            "process_cpu_s_during_sending": round(busy_cpu_s, 1),
            "floor_messages": floor_sent,
            "floor_messages_per_s": round(floor_rate, 1),
            "batch_size": batch_size,
            "batches": len(per_batch),
            "queries_per_full_batch": sorted(set(full)),
            "statuses": statuses,
            "campaign_status": campaign.status,
            "finished": campaign.status == CampaignStatus.SENT,
        },
        extra_checks=[
            Check("queries_per_batch", max_queries, "queries", "<= 8"),
            Check("queries_per_batch_spread", spread, "queries", "<= 0"),
            Check("withdrawn_reached", reached_withdrawn, "messages", "<= 0"),
            Check("engine_warnings", warnings.count, "log lines", "<= 0"),
            Check("consenting_missed", missing, "recipients", "<= 0"),
            Check("duplicates", duplicates, "messages", "<= 0"),
        ],
    )
