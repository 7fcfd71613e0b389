"""purge_vs_raw_delete_ratio (+ purge_max_lock_s): the retention engine against one DELETE.

On PostgreSQL, in the bench database, the request-log table gets N rows (default
10,000,000; --quick or BENCH_PURGE_ROWS for fewer) spread evenly over the 30 days before
today, ids ascending with time, made by one server-side INSERT ... SELECT over
generate_series. Then, in each of BENCH_PURGE_ROUNDS rounds (default 3), the oldest day
left (N/30 rows) is removed twice, on identical data:

* the floor: one raw ``DELETE FROM <copy> WHERE time < cutoff`` on a copy of the table;
* the engine: ``retention_run_rule`` for accounts.RequestLog, in this process (the
  harness already runs Django on the bench settings and database), with ``now`` chosen
  so that its cutoff is the same instant.

Identical data: the copy is ``CREATE TABLE ... (LIKE accounts_requestlog INCLUDING ALL)``
filled from the table with ``INSERT ... SELECT ... ORDER BY id``, so both have the same
rows in the same physical order with the same indexes, and both lose the same day each
round. Both tables are built the same way (indexes dropped, rows inserted, indexes
re-created from their own definitions: minutes faster than maintaining five indexes row
by row). Each measurement starts after VACUUM ANALYZE and a CHECKPOINT of its table, with
autovacuum off on both, so neither inherits the other's dead rows, dirty pages or an
untimely vacuum; which of the two goes first alternates from round to round.

During both measurements the same bounded writer keeps inserting new rows ("requests keep
arriving": a small INSERT every WRITER_INTERVAL_S) into the table being purged, so both
work under the same load; its worst insert latency shows whether it stalled, and every
row it inserted during the purges must survive them.

purge_max_lock_s is the longest any write transaction of the purge held its locks, from
two sources: a monitor sampling pg_locks/pg_stat_activity every ~20 ms (transactions of
the purging backend, found by application_name, holding RowExclusiveLock on the table:
clock_timestamp() - xact_start), and, because sampling misses transactions shorter than
its interval, an exact in-process clock from each chunk's DELETE to the end of its COMMIT.

The headline is the median over the rounds of engine seconds / raw DELETE seconds.
RETENTION_RANGE_CHUNK_SIZE can be overridden for the run with BENCH_PURGE_CHUNK. The copy is
dropped and the table emptied at the end (the harness drops the bench database on its
next run anyway).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from psycopg import sql

from tests.bench.common import BenchContext, BenchResult, Check, _postgres_conninfo, log

NAME = "purge_vs_raw_delete_ratio"
LOCK_NAME = "purge_max_lock_s"
RATIO_GOAL = "<= 1.5"
LOCK_GOAL = "< 1"
DEFAULT_ROWS = 10_000_000
QUICK_ROWS = 1_000_000
MIN_ROWS = 30_000
DEFAULT_ROUNDS = 3
DAYS = 30
COPY_SUFFIX = "_rawcopy"
APP_RAW = "pp-bench-raw-delete"
APP_PURGE = "pp-bench-purge"
APP_WRITER = "pp-bench-writer"
APP_MONITOR = "pp-bench-lock-monitor"
WRITER_PATH = "/__bench__/writer/"
WRITER_BATCH = 20
WRITER_INTERVAL_S = 0.05  # 20 rows every 50 ms: 400 new log lines per second
MONITOR_INTERVAL_S = 0.02
PHASE_LIMIT_S = 900.0  # the writer and the monitor stop by then whatever happens
STATEMENT_TIMEOUT = "20min"


# --- Building the data ------------------------------------------------------------------

# One server-side statement: ids 1..N, times evenly spaced over DAYS days from t0 (so
# ascending with id), a stable pseudo-random uuid and IPv4, and plausible other columns.
INSERT_ROWS = """
INSERT INTO {table} (id, request_id, time, ip_address, method, path, status, bytes_sent,
                     browser, os, referrer, language, user_id)
SELECT g,
       md5('pp-bench-' || g)::uuid,
       %(t0)s::timestamptz + (g - 1) * (%(span)s::interval / %(n)s::float8),
       '10.0.0.0'::inet + ((g * 2654435761) %% 65536),
       CASE WHEN g %% 10 = 0 THEN 'POST' ELSE 'GET' END,
       (ARRAY['/', '/accounts/profile/', '/photos/', '/albums/', '/accounts/login/',
              '/privacy/', '/photos/upload/', '/notifications/'])[g %% 8 + 1]
         || CASE WHEN g %% 3 = 0 THEN (g %% 5000)::text || '/' ELSE '' END,
       CASE g %% 50 WHEN 0 THEN 404 WHEN 1 THEN 302 WHEN 2 THEN 403 WHEN 3 THEN 500
                    ELSE 200 END,
       500 + (g * 37) %% 40000,
       (ARRAY['Firefox', 'Chrome', 'Safari', 'Edge'])[g %% 4 + 1],
       (ARRAY['Linux', 'Windows', 'Mac OS X', 'Android', 'iOS'])[g %% 5 + 1],
       CASE WHEN g %% 7 = 0 THEN 'https://photos.example.org/' ELSE '' END,
       CASE WHEN g %% 2 = 0 THEN 'en-GB,en;q=0.9' ELSE 'de-DE,de;q=0.8,en;q=0.5' END,
       CASE WHEN g %% 3 = 0 THEN NULL ELSE (g * 7919) %% 2000 + 1 END
FROM generate_series(1::bigint, %(n)s::bigint) AS g
"""

# What the writer inserts: new lines timed now, ids from the identity sequence.
INSERT_NEW = """
INSERT INTO {table} (request_id, time, ip_address, method, path, status, bytes_sent,
                     browser, os, referrer, language, user_id)
SELECT gen_random_uuid(), clock_timestamp(), '192.0.2.10', 'GET', %(path)s, 200, 1234,
       'Firefox', 'Linux', '', 'en', NULL
FROM generate_series(1, %(batch)s)
"""

LOCKS = """
SELECT a.pid, a.xact_start,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
       bool_or(l.mode = 'RowExclusiveLock')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE a.application_name = %(app)s AND l.locktype = 'relation' AND l.granted
  AND l.relation = %(table)s::regclass AND a.xact_start IS NOT NULL
GROUP BY a.pid, a.xact_start
"""


def _one(cur: Any) -> Any:
    row = cur.fetchone()
    if row is None:
        raise RuntimeError("the query returned no row")
    return row


@contextmanager
def _indexes_rebuilt_after(cur: Any, table: str) -> Iterator[None]:
    """Drop the table's indexes (and the pk/unique constraints behind some) for a bulk
    load, then re-create each from its own definition: same names, same columns."""
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY contype, conname",
        [table],
    )
    constraints: list[tuple[str, str]] = cur.fetchall()
    cur.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
        "ORDER BY c.relname",
        [table],
    )
    indexes: list[tuple[str, str]] = cur.fetchall()
    for name, _ in indexes:
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    for name, _ in constraints:
        cur.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(name)
            )
        )
    try:
        yield
    finally:
        for name, definition in constraints:
            cur.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                    sql.Identifier(table), sql.Identifier(name)
                )
                + sql.SQL(definition)  # pg_get_constraintdef: PostgreSQL's own text
            )
        for _, definition in indexes:
            cur.execute(sql.SQL(definition))  # pg_get_indexdef: PostgreSQL's own text


def _sync_identity(cur: Any, table: str) -> None:
    """Move the id sequence past the explicit ids, so the writer's rows get new ones."""
    cur.execute(
        sql.SQL("SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM {}))").format(
            sql.Identifier(table)
        ),
        [table],
    )


def _build(cur: Any, table: str, copy: str, rows: int, t0: datetime) -> dict[str, float]:
    timings: dict[str, float] = {}
    started = time.monotonic()
    with _indexes_rebuilt_after(cur, table):
        cur.execute(
            sql.SQL(INSERT_ROWS).format(table=sql.Identifier(table)),
            {"t0": t0, "span": f"{DAYS} days", "n": rows},
        )
        timings["insert_s"] = round(time.monotonic() - started, 1)
    timings["table_s"] = round(time.monotonic() - started, 1)
    _sync_identity(cur, table)
    log(f"  {rows:,} rows in {table} in {timings['table_s']:.1f}s")

    started = time.monotonic()
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(copy)))
    cur.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
            sql.Identifier(copy), sql.Identifier(table)
        )
    )
    with _indexes_rebuilt_after(cur, copy):
        cur.execute(
            sql.SQL("INSERT INTO {} SELECT * FROM {} ORDER BY id").format(
                sql.Identifier(copy), sql.Identifier(table)
            )
        )
    _sync_identity(cur, copy)
    timings["copy_s"] = round(time.monotonic() - started, 1)
    log(f"  the copy {copy} in {timings['copy_s']:.1f}s")
    for name in (table, copy):
        # No autovacuum starting in the middle of one measurement and not the other.
        cur.execute(
            sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(sql.Identifier(name))
        )
    return timings


def _settle(cur: Any, table: str) -> dict[str, float]:
    """The same starting line for each measurement: vacuumed, analysed, checkpointed."""
    started = time.monotonic()
    cur.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
    vacuum_s = time.monotonic() - started
    started = time.monotonic()
    try:
        cur.execute("CHECKPOINT")
    except Exception as exc:  # needs superuser or pg_checkpoint: measure anyway
        log(f"  no CHECKPOINT ({type(exc).__name__}: {exc})")
    checkpoint_s = time.monotonic() - started
    return {"vacuum_analyze_s": round(vacuum_s, 1), "checkpoint_s": round(checkpoint_s, 1)}


# --- The writer and the lock monitor ----------------------------------------------------


@dataclass
class Writer:
    """Inserts WRITER_BATCH new rows every WRITER_INTERVAL_S until stopped (bounded)."""

    conninfo: dict[str, Any]
    table: str
    latencies: list[float] = field(default_factory=list)
    inserted: int = 0
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        import psycopg

        statement = sql.SQL(INSERT_NEW).format(table=sql.Identifier(self.table))
        try:
            with psycopg.connect(
                **self.conninfo, autocommit=True, application_name=APP_WRITER
            ) as conn:
                began = time.perf_counter()
                for n in range(int(PHASE_LIMIT_S / WRITER_INTERVAL_S)):
                    if self.stop.is_set():
                        break
                    started = time.perf_counter()
                    cur = conn.execute(statement, {"path": WRITER_PATH, "batch": WRITER_BATCH})
                    self.latencies.append(time.perf_counter() - started)
                    self.inserted += cur.rowcount
                    # A steady rate: the next batch is due at a fixed tick, not after a pause.
                    due = began + (n + 1) * WRITER_INTERVAL_S
                    self.stop.wait(max(0.0, due - time.perf_counter()))
        except BaseException as exc:
            self.error = exc

    def summary(self, seconds: float) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "rows_inserted": self.inserted,
            "inserts": len(lat),
            "rows_per_s": round(self.inserted / seconds, 1) if seconds > 0 else 0.0,
            "max_latency_ms": round(lat[-1] * 1000, 2) if lat else 0.0,
            "p99_latency_ms": round(lat[max(0, int(len(lat) * 0.99) - 1)] * 1000, 2)
            if lat
            else 0.0,
            "median_latency_ms": round(statistics.median(lat) * 1000, 2) if lat else 0.0,
        }


@dataclass
class LockMonitor:
    """Samples which transactions of one application hold locks on the table."""

    conninfo: dict[str, Any]
    table: str
    app: str
    # xact_start -> (longest age seen, whether it held RowExclusiveLock)
    xacts: dict[datetime, tuple[float, bool]] = field(default_factory=dict)
    samples: int = 0
    elapsed: float = 0.0
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(
                **self.conninfo, autocommit=True, application_name=APP_MONITOR
            ) as conn:
                began = time.perf_counter()
                for _ in range(int(PHASE_LIMIT_S / MONITOR_INTERVAL_S)):
                    if self.stop.is_set():
                        break
                    rows = conn.execute(LOCKS, {"app": self.app, "table": self.table}).fetchall()
                    self.samples += 1
                    for _pid, xact_start, age, row_exclusive in rows:
                        seen, excl = self.xacts.get(xact_start, (0.0, False))
                        excl = excl or bool(row_exclusive)
                        self.xacts[xact_start] = (max(seen, float(age)), excl)
                    self.stop.wait(MONITOR_INTERVAL_S)
                self.elapsed = time.perf_counter() - began
        except BaseException as exc:
            self.error = exc

    def summary(self) -> dict[str, Any]:
        writing = [age for age, excl in self.xacts.values() if excl]
        return {
            "max_row_exclusive_xact_s": round(max(writing, default=0.0), 3),
            "max_any_lock_xact_s": round(max((a for a, _ in self.xacts.values()), default=0.0), 3),
            "row_exclusive_xacts_seen": len(writing),
            "xacts_seen": len(self.xacts),
            "samples": self.samples,
            "mean_sample_interval_ms": round(self.elapsed / self.samples * 1000, 1)
            if self.samples
            else 0.0,
        }


class ChunkClock:
    """Times every write transaction of Django's connection in this process, exactly.

    A chunk's transaction takes its row locks at its DELETE and holds them until its
    COMMIT returns: the span from the DELETE's start to the end of the commit is how long
    it held them. Complements the sampling monitor, which misses short transactions.
    """

    def __init__(self) -> None:
        self.deletes = 0
        self.other_statements = 0
        self.max_delete_s = 0.0
        self.xacts: list[float] = []
        self.others: list[tuple[str, float]] = []
        self._open_since: float | None = None
        self._stack = ExitStack()

    @property
    def max_xact_s(self) -> float:
        return round(max(self.xacts, default=0.0), 4)

    def _execute(self, execute: Any, sql_text: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        is_delete = sql_text.lstrip().upper().startswith("DELETE")
        if is_delete and self._open_since is None:
            self._open_since = started
        try:
            return execute(sql_text, params, many, context)
        finally:
            if is_delete:
                self.deletes += 1
                self.max_delete_s = max(self.max_delete_s, time.perf_counter() - started)
            else:
                self.other_statements += 1
                self.others.append((sql_text[:70], time.perf_counter() - started))

    def __enter__(self) -> ChunkClock:
        from django.db import connection, connections

        wrapper = connections["default"]
        commit = wrapper.commit

        def timed_commit() -> None:
            try:
                commit()
            finally:
                if self._open_since is not None:
                    self.xacts.append(time.perf_counter() - self._open_since)
                    self._open_since = None

        setattr(wrapper, "commit", timed_commit)  # noqa: B010 - an instance override
        self._stack.callback(delattr, wrapper, "commit")
        self._stack.enter_context(connection.execute_wrapper(self._execute))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def summary(self) -> dict[str, Any]:
        return {
            "delete_statements": self.deletes,
            "other_statements": self.other_statements,
            "transactions": len(self.xacts),
            "max_xact_s": self.max_xact_s,
            "mean_xact_ms": round(statistics.mean(self.xacts) * 1000, 2) if self.xacts else 0,
            "max_delete_statement_s": round(self.max_delete_s, 4),
            "other_statements_ms": [[text, round(s * 1000, 2)] for text, s in self.others],
        }


@dataclass
class Phase:
    seconds: float
    writer: dict[str, Any]
    locks: dict[str, Any]
    result: Any
    extra: dict[str, Any] = field(default_factory=dict)


def _measure(conninfo: dict[str, Any], table: str, app: str, work: Callable[[], Any]) -> Phase:
    """Run *work* with the writer inserting into *table* and the monitor watching *app*."""
    writer = Writer(conninfo, table)
    monitor = LockMonitor(conninfo, table, app)
    threads = [
        threading.Thread(target=writer.run, name="bench-writer", daemon=True),
        threading.Thread(target=monitor.run, name="bench-lock-monitor", daemon=True),
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # both running steadily before the clock starts
    started = time.perf_counter()
    try:
        result = work()
        seconds = time.perf_counter() - started
        time.sleep(0.2)
    finally:
        writer.stop.set()
        monitor.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    for part in (writer, monitor):
        if part.error is not None:
            raise RuntimeError(f"{type(part).__name__} failed: {part.error!r}") from part.error
    return Phase(seconds, writer.summary(seconds + 0.7), monitor.summary(), result)


# --- The benchmark ----------------------------------------------------------------------


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").replace("_", "").replace(",", "")
    value = int(raw) if raw else default
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum:,}")
    return value


def _count_due(cur: Any, table: str, cutoff: datetime) -> int:
    cur.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE time < %s").format(sql.Identifier(table)), [cutoff]
    )
    return int(_one(cur)[0])


def _raw_round(cur: Any, conninfo: dict[str, Any], copy: str, cutoff: datetime) -> Phase:
    """The floor: one DELETE of everything older than *cutoff* from the copy."""
    import psycopg

    settle = _settle(cur, copy)
    with psycopg.connect(**conninfo, autocommit=True, application_name=APP_RAW) as raw:

        def raw_delete() -> int:
            done = raw.execute(
                sql.SQL("DELETE FROM {} WHERE time < %s").format(sql.Identifier(copy)), [cutoff]
            )
            return int(done.rowcount)

        phase = _measure(conninfo, copy, APP_RAW, raw_delete)
    phase.extra = {"settle": settle}
    return phase


def _engine_round(
    cur: Any, conninfo: dict[str, Any], table: str, entry: Any, now: datetime, chunk: int
) -> Phase:
    """The engine: retention_run_rule in this process, on Django's own connection."""
    from django.db import connection
    from django.test import override_settings

    from dsr.services.retention import retention_run_rule

    settle = _settle(cur, table)
    connection.ensure_connection()
    with connection.cursor() as dj:
        dj.execute("SELECT set_config('application_name', %s, false)", [APP_PURGE])
        dj.execute("SELECT set_config('statement_timeout', %s, false)", [STATEMENT_TIMEOUT])
        dj.execute("SELECT pg_backend_pid()")
        purge_pid = dj.fetchone()[0]
    try:
        with override_settings(RETENTION_RANGE_CHUNK_SIZE=chunk), ChunkClock() as clock:
            phase = _measure(
                conninfo, table, APP_PURGE, lambda: retention_run_rule(entry=entry, now=now)
            )
    finally:
        with connection.cursor() as dj:
            dj.execute("SELECT pg_backend_pid()")
            same_backend = dj.fetchone()[0] == purge_pid
            dj.execute("RESET application_name")
            dj.execute("RESET statement_timeout")
    if not same_backend:
        raise RuntimeError("Django reconnected mid-run: the lock monitor watched the wrong backend")
    phase.extra = {"settle": settle, "clock": clock}
    return phase


def _median(values: list[float], digits: int = 3) -> float:
    return round(statistics.median(values), digits)


def _rows_per_s(rows: list[int], seconds: list[float]) -> int:
    return round(statistics.median(n / s for n, s in zip(rows, seconds, strict=True)))


def purge_vs_raw_delete_ratio(ctx: BenchContext) -> BenchResult:
    import psycopg
    from django.conf import settings
    from django.db import connection

    from accounts.models import RequestLog
    from dsr.models import RetentionRunStatus
    from dsr.registry import registry

    if connection.vendor != "postgresql":
        raise RuntimeError("this benchmark needs PostgreSQL (run it through make bench)")
    entry = registry.get("accounts.RequestLog")
    if entry is None or entry.retention is None:
        raise RuntimeError("accounts.RequestLog has no retention rule")
    rows = _env_int("BENCH_PURGE_ROWS", QUICK_ROWS if ctx.quick else DEFAULT_ROWS, MIN_ROWS)
    rounds = _env_int("BENCH_PURGE_ROUNDS", 1 if ctx.quick else DEFAULT_ROUNDS, 1)
    if rounds >= DAYS:
        raise ValueError(f"BENCH_PURGE_ROUNDS must be below {DAYS}")
    chunk = _env_int("BENCH_PURGE_CHUNK", settings.RETENTION_RANGE_CHUNK_SIZE, 1)
    table = RequestLog._meta.db_table
    copy = table + COPY_SUFFIX
    conninfo = _postgres_conninfo(ctx.database_url, urlsplit(ctx.database_url).path.lstrip("/"))

    raw_phases: list[Phase] = []
    engine_phases: list[Phase] = []
    removed: list[int] = []
    problems: list[str] = []
    with psycopg.connect(**conninfo, autocommit=True, application_name="pp-bench-admin") as admin:
        cur = admin.cursor()
        cur.execute("SELECT set_config('statement_timeout', %s, false)", [STATEMENT_TIMEOUT])
        try:
            cur.execute("SELECT date_trunc('day', now()) - make_interval(days => %s)", [DAYS])
            t0: datetime = _one(cur)[0]
            log(f"building {rows:,} request-log rows over {DAYS} days and a copy")
            cur.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.Identifier(table)))
            build = _build(cur, table, copy, rows, t0)
            cur.execute(
                "SELECT pg_total_relation_size(%s::regclass), pg_relation_size(%s::regclass)",
                [table, table],
            )
            total_bytes, heap_bytes = _one(cur)

            for k in range(rounds):
                # Each round removes the oldest day left, from both tables.
                cutoff = t0 + timedelta(days=k + 1)
                # The rule removes rows older than now - period: this now gives that cutoff.
                now = cutoff + entry.retention.period()
                due = _count_due(cur, table, cutoff)
                if _count_due(cur, copy, cutoff) != due:
                    raise RuntimeError("the copy differs from the table")
                removed.append(due)
                # Alternate which goes first, so neither always inherits the other's wake.
                for which in ("raw", "engine") if k % 2 == 0 else ("engine", "raw"):
                    if which == "raw":
                        log(f"  round {k + 1}/{rounds}: raw DELETE of {due:,} rows from {copy}")
                        phase = _raw_round(cur, conninfo, copy, cutoff)
                        raw_phases.append(phase)
                        if phase.result != due:
                            problems.append(f"the raw DELETE removed {phase.result:,} of {due:,}")
                    else:
                        log(
                            f"  round {k + 1}/{rounds}: retention_run_rule "
                            f"(chunk {chunk:,}) on {table}"
                        )
                        phase = _engine_round(cur, conninfo, table, entry, now, chunk)
                        engine_phases.append(phase)
                        run = phase.result
                        if run.status != RetentionRunStatus.OK:
                            problems.append(f"the run ended {run.status}: {run.errors[:300]}")
                        if run.rows_removed != due or run.overdue_after:
                            problems.append(
                                f"the engine removed {run.rows_removed:,} of {due:,} and left "
                                f"{run.overdue_after:,} overdue"
                            )
                    log(f"    {phase.seconds:.3f}s, writer max {phase.writer['max_latency_ms']} ms")
                log(
                    f"  round {k + 1}/{rounds}: engine/raw "
                    f"{engine_phases[-1].seconds / raw_phases[-1].seconds:.3f}"
                )

            cur.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE path = %s").format(sql.Identifier(table)),
                [WRITER_PATH],
            )
            writer_rows_left = int(_one(cur)[0])
            due_left = _count_due(cur, table, t0 + timedelta(days=rounds))
        finally:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(copy)))
            cur.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.Identifier(table)))
            cur.execute(
                sql.SQL("ALTER TABLE {} RESET (autovacuum_enabled)").format(sql.Identifier(table))
            )
            log(f"  dropped {copy}, emptied {table}")

    writer_rows = sum(p.writer["rows_inserted"] for p in engine_phases)
    if writer_rows_left != writer_rows:
        problems.append(
            f"{writer_rows - writer_rows_left} of the {writer_rows} rows the writer inserted "
            "during the purges are gone"
        )
    if due_left:
        problems.append(f"{due_left:,} rows older than the last cutoff left")
    if problems:
        raise RuntimeError("the purge did not behave: " + "; ".join(problems))

    raw_s = [p.seconds for p in raw_phases]
    engine_s = [p.seconds for p in engine_phases]
    ratios = [e / r for e, r in zip(engine_s, raw_s, strict=True)]
    ratio = _median(ratios)
    clocks: list[ChunkClock] = [p.extra["clock"] for p in engine_phases]
    # The monitor misses transactions shorter than its interval; the clock sees them all.
    max_lock = round(
        max(
            max(p.locks["max_row_exclusive_xact_s"] for p in engine_phases),
            max(c.max_xact_s for c in clocks),
        ),
        3,
    )
    writer_max = max(p.writer["max_latency_ms"] for p in engine_phases)
    details: dict[str, Any] = {
        "rows": rows,
        "rounds": rounds,
        "rows_removed_per_round": removed,
        "round_ratios": [round(r, 3) for r in ratios],
        "raw_delete_s": _median(raw_s),
        "engine_s": _median(engine_s),
        "raw_delete_s_rounds": [round(x, 3) for x in raw_s],
        "engine_s_rounds": [round(x, 3) for x in engine_s],
        "raw_delete_rows_per_s": round(
            statistics.median(n / s for n, s in zip(removed, raw_s, strict=True))
        ),
        "engine_rows_per_s": round(
            statistics.median(n / s for n, s in zip(removed, engine_s, strict=True))
        ),
        "chunk_size": chunk,
        "chunks_per_round": [c.deletes for c in clocks],
        "engine_max_chunk_xact_s": max(c.max_xact_s for c in clocks),
        "engine_monitor_max_row_exclusive_xact_s": max(
            p.locks["max_row_exclusive_xact_s"] for p in engine_phases
        ),
        "raw_delete_monitor_max_xact_s": max(
            p.locks["max_row_exclusive_xact_s"] for p in raw_phases
        ),
        "writer_max_latency_ms_during_engine": writer_max,
        "writer_max_latency_ms_during_raw_delete": max(
            p.writer["max_latency_ms"] for p in raw_phases
        ),
        "writer_rows_inserted_during_engine": writer_rows,
        "writer_rows_kept": writer_rows_left,
        "writer_rate": f"{WRITER_BATCH} rows every {WRITER_INTERVAL_S * 1000:.0f} ms",
        "engine_rounds": [
            {
                "seconds": round(p.seconds, 3),
                "chunks": p.extra["clock"].summary(),
                "locks": p.locks,
                "writer": p.writer,
                "settle": p.extra["settle"],
            }
            for p in engine_phases
        ],
        "raw_delete_rounds": [
            {
                "seconds": round(p.seconds, 3),
                "locks": p.locks,
                "writer": p.writer,
                "settle": p.extra["settle"],
            }
            for p in raw_phases
        ],
        "first_cutoff": (t0 + timedelta(days=1)).isoformat(),
        "retention_days": entry.retention.period().days,
        "table_bytes": total_bytes,
        "heap_bytes": heap_bytes,
        "build_s": build,
        "method": (
            "identical data: a LIKE ... INCLUDING ALL copy of the table filled in id order; "
            "each round removes the oldest day left from both (raw DELETE on the copy, the "
            "engine on the table, alternating which goes first); VACUUM ANALYZE and "
            "CHECKPOINT before each measurement; the same writer load during both"
        ),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    return BenchResult(
        name=NAME,
        value=ratio,
        unit="x",
        goal=RATIO_GOAL,
        details=details,
        extra_checks=[Check(LOCK_NAME, max_lock, "s", LOCK_GOAL)],
    )
