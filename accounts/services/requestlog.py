"""The request log (LOG-1..LOG-4): capture, buffer, batch write, statistics, export.

The web process only appends one JSON line to a Redis list (one round trip, no SQL).
A worker moves batches to a processing list with one atomic script, inserts them, then
drops the processing list; a crash in between replays the batch, and the unique
request_id makes the replay harmless. If Redis is unreachable the line is written to the
database directly: a slower request, but nothing lost.
"""

from __future__ import annotations

import atexit
import csv
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import transaction
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import empty
from ua_parser import parse as parse_user_agent

from accounts.models import AuditAction, DailyUsage, RequestLog, User
from accounts.services.audit import audit_log_write
from common.http import client_ip
from common.redisclient import redis_client

logger = logging.getLogger(__name__)

MAX_PATH = 500
MAX_UA = 400
MAX_LANGUAGE = 100
_TOKENISH = re.compile(r"^[A-Za-z0-9_\-:.=]{20,}$|:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SAFE_QUERY_VALUE = re.compile(r"^\d{1,6}$|^[a-z_]{1,12}$")

# Move up to ARGV[1] lines from the buffer to the processing list, atomically.
_CLAIM_SCRIPT = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
  for i = 1, #items, 500 do
    redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 499, #items)))
  end
end
return #items
"""


def _redis() -> redis.Redis | None:
    # Short timeouts: a slow Redis must not hold up page views; we fall back to SQL.
    return redis_client(timeout=0.5)


def _clean(value: str, limit: int) -> str:
    return _CONTROL.sub("", value)[:limit]


def sanitize_path(full_path: str) -> str:
    """Path and query with anything that could be a secret removed.

    Path segments that look like tokens (long, or signed with ':') become '…'; query
    values are dropped unless they are short numbers or plain words (page=2, sort=name).
    """
    path, _, query = full_path.partition("?")
    segments = ["…" if _TOKENISH.search(seg) else seg for seg in path.split("/")]
    clean = "/".join(segments)
    if query:
        params = []
        for pair in query.split("&")[:20]:
            key, _, value = pair.partition("=")
            key = key[:40]
            params.append(f"{key}={value}" if _SAFE_QUERY_VALUE.match(value) else f"{key}=…")
        clean += "?" + "&".join(params)
    return _clean(clean, MAX_PATH)


def sanitize_referrer(referrer: str) -> str:
    if not referrer:
        return ""
    scheme_host, sep, rest = referrer.partition("://")
    if not sep:
        return ""
    host, slash, path = rest.partition("/")
    return _clean(
        f"{scheme_host}://{host}" + (sanitize_path("/" + path) if slash else ""), MAX_PATH
    )


def _user_id(request: HttpRequest) -> int | None:
    """The logged-in user's id, without loading the user row just for the log.

    If the view already loaded the user, that is used; otherwise the id stored in the
    session (one cache read, no SQL). Requests that never had a session (static files
    answered early) have none.
    """
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "_wrapped", None) is not empty:
        return user.pk if user.is_authenticated else None
    session = getattr(request, "session", None)
    if session is None or not request.COOKIES.get(settings.SESSION_COOKIE_NAME):
        return None
    raw = session.get(SESSION_KEY)
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def capture(request: HttpRequest, response: HttpResponseBase) -> dict[str, Any]:
    """Everything LOG-1 names, from one request; cheap (no parsing, no SQL)."""
    user_id = _user_id(request)
    # A streamed body's size is only known when the view declared it.
    size = int(response.get("Content-Length") or 0) if response.streaming else len(response.content)  # type: ignore[attr-defined]
    meta = request.META
    return {
        "id": uuid.uuid4().hex,
        "t": time.time(),
        "ip": client_ip(request),
        "m": _clean(request.method or "", 10),
        "p": sanitize_path(request.get_full_path()),
        "u": user_id,
        "s": response.status_code,
        "b": size,
        "ua": _clean(str(meta.get("HTTP_USER_AGENT", "")), MAX_UA),
        "r": sanitize_referrer(str(meta.get("HTTP_REFERER", ""))),
        "l": _clean(str(meta.get("HTTP_ACCEPT_LANGUAGE", "")), MAX_LANGUAGE),
    }


class _LocalBatch:
    """Lines of this web process waiting to be pushed to Redis together.

    One RPUSH per request was the log's main cost on the hot path (a round trip to a
    process competing for the same cores). Lines are pushed in batches of
    REQUEST_LOG_BATCH_SIZE, or after REQUEST_LOG_BATCH_SECONDS by a timer thread, and
    at process exit (a graceful restart loses nothing). A hard kill of a web process can
    lose at most that short window; REQUEST_LOG_BATCH_SIZE=1 turns batching off.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._pid = 0
        self._wake = threading.Event()

    def _start_timer(self) -> None:
        # Per process: a worker forked from a parent with a timer thread has none itself.
        self._pid = os.getpid()
        threading.Thread(target=self._timer, name="request-log-batch", daemon=True).start()
        atexit.register(self.flush)

    def _timer(self) -> None:
        while True:
            self._wake.wait(settings.REQUEST_LOG_BATCH_SECONDS)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # never let the timer die
                logger.exception("request-log batch push failed")

    def add(self, raw: str) -> None:
        if settings.REQUEST_LOG_BATCH_SIZE <= 1:
            _push([raw])
            return
        with self._lock:
            if self._pid != os.getpid():
                self._lines = []
                self._start_timer()
            self._lines.append(raw)
            full = len(self._lines) >= settings.REQUEST_LOG_BATCH_SIZE
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            _push(lines)


def _push(lines: list[str]) -> None:
    client = _redis()
    if client is not None:
        try:
            client.rpush(settings.REQUEST_LOG_BUFFER_KEY, *lines)
            return
        except redis.RedisError:
            logger.warning("request log buffer unreachable; writing %d lines directly", len(lines))
    _insert(lines)


_batch = _LocalBatch()


def request_log_enqueue(line: dict[str, Any]) -> None:
    _batch.add(json.dumps(line))


def request_log_push_local() -> None:
    """Push this process's pending lines now (tests, and the flush task's own process)."""
    _batch.flush()


@lru_cache(maxsize=2048)
def _families(user_agent: str) -> tuple[str, str]:
    if not user_agent:
        return "", ""
    result = parse_user_agent(user_agent)
    browser = result.user_agent.family if result.user_agent else "Other"
    system = result.os.family if result.os else "Other"
    return browser[:50], system[:50]


def _to_row(line: dict[str, Any]) -> RequestLog:
    # Only the browser and OS families are kept, not the full user-agent string.
    browser, system = _families(line.get("ua", ""))
    return RequestLog(
        request_id=uuid.UUID(line["id"]),
        time=datetime.fromtimestamp(line["t"], tz=UTC),
        ip_address=line.get("ip"),
        method=line.get("m", ""),
        path=line.get("p", ""),
        user_id=line.get("u"),
        status=int(line.get("s", 0)),
        bytes_sent=int(line.get("b", 0)),
        browser=browser,
        os=system,
        referrer=line.get("r", ""),
        language=line.get("l", ""),
    )


def _insert(raw_lines: Iterable[bytes | str]) -> int:
    rows = []
    for raw in raw_lines:
        try:
            rows.append(_to_row(json.loads(raw)))
        except (ValueError, KeyError, TypeError):
            logger.error("dropping a malformed request-log line: %r", raw[:200])
    RequestLog.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return len(rows)


def request_log_flush(*, batch_size: int = 2000, max_batches: int = 200) -> int:
    """Move buffered lines into the database. One flusher at a time (a Redis lock)."""
    request_log_push_local()
    client = _redis()
    if client is None:
        return 0
    key = settings.REQUEST_LOG_BUFFER_KEY
    processing = key + ":processing"
    written = 0
    lock = client.lock(key + ":lock", timeout=300)
    if not lock.acquire(blocking_timeout=1):
        return 0  # another worker is flushing right now
    try:
        # A batch left by a flusher that died mid-way is replayed first.
        leftover = client.lrange(processing, 0, -1)
        if leftover:
            written += _insert(leftover)
            client.delete(processing)
        claim = client.register_script(_CLAIM_SCRIPT)
        for _ in range(max_batches):
            moved = int(claim(keys=[key, processing], args=[batch_size]))
            if not moved:
                break
            written += _insert(client.lrange(processing, 0, -1))
            client.delete(processing)
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            logger.warning("request-log flush outlived its lock")
    return written


def _path_group(path: str) -> str:
    first = path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
    return (first or "home")[:50]


def usage_aggregate_day(*, day: date) -> int:
    """(Re)compute one day's non-identifying statistics; safe to run again (LOG-3)."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    rows = (
        RequestLog.objects.filter(time__gte=start, time__lt=start + timedelta(days=1))
        .values_list("path", "status", "browser", "bytes_sent")
        .iterator(chunk_size=5000)
    )
    counts: dict[tuple[str, str, str], list[int]] = {}
    for path, status, browser, size in rows:
        key = (_path_group(path), f"{status // 100}xx", browser or "Other")
        bucket = counts.setdefault(key, [0, 0])
        bucket[0] += 1
        bucket[1] += size
    with transaction.atomic():
        DailyUsage.objects.filter(day=day).delete()
        DailyUsage.objects.bulk_create(
            DailyUsage(
                day=day, path_group=g, status_class=s, browser=b, requests=n, bytes_sent=size
            )
            for (g, s, b), (n, size) in counts.items()
        )
    return len(counts)


def usage_aggregate_pending(*, today: date | None = None) -> int:
    """Aggregate every finished day that still has log rows but no statistics."""
    today = today or datetime.now(tz=UTC).date()
    days = (
        RequestLog.objects.filter(time__lt=datetime.combine(today, datetime.min.time(), tzinfo=UTC))
        .annotate(day=TruncDate("time"))
        .values_list("day", flat=True)
        .distinct()
    )
    done = set(DailyUsage.objects.values_list("day", flat=True).distinct())
    todo = sorted(set(days) - done)
    for day in todo:
        usage_aggregate_day(day=day)
    return len(todo)


def _csv_safe(value: Any) -> Any:
    # Spreadsheet formula injection: a cell starting with = + - @ is made inert.
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_COLUMNS = [
    "time",
    "ip_address",
    "method",
    "path",
    "user_id",
    "status",
    "bytes_sent",
    "browser",
    "os",
    "referrer",
    "language",
]


def request_log_export_csv(
    *,
    actor: User,
    start: datetime,
    end: datetime,
    ip_address: str | None,
    reason: str,
    actor_ip: str | None,
    recipient: Any = None,
    purpose: Any = None,
) -> Iterator[str]:
    """Stream the log lines of an incident window as CSV (LOG-4); the export is audited.

    With a *recipient* (e.g. the police after an attack) and a *purpose*, the hand-over is
    also recorded as a disclosure (DSR-5): network and usage data of every account whose
    lines are in the window, in the same transaction as the audit row. Both are written
    before the first line is streamed.
    """
    qs = RequestLog.objects.filter(time__gte=start, time__lt=end).order_by("time", "id")
    if ip_address:
        qs = qs.filter(ip_address=ip_address)
    with transaction.atomic():
        audit_log_write(
            actor=actor,
            action=AuditAction.REQUEST_LOG_EXPORT,
            ip_address=actor_ip,
            detail={
                "start": start.isoformat(),
                "end": end.isoformat(),
                "ip_filter": bool(ip_address),
                "rows": qs.count(),
                "reason": reason[:500],
                **({"recipient": recipient.name} if recipient is not None else {}),
            },
        )
        if recipient is not None and purpose is not None:
            from consent.services.register import disclosure_record
            from dsr.registry import Category

            window = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
            disclosure_record(
                actor=actor,
                recipient=recipient,
                categories=[Category.NETWORK, Category.USAGE],
                purpose=purpose,
                description=f"Request-log lines of {window} (LOG-4). Reason: {reason[:500]}",
                users=qs.filter(user_id__isnull=False).order_by().values("user_id").distinct(),
                subjects_description=(
                    f"Everyone who made requests from {ip_address} between {window}"
                    if ip_address
                    else f"Everyone who made requests between {window}"
                ),
            )
    return _export_rows(qs)


def _export_rows(qs: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in qs.values_list(*CSV_COLUMNS).iterator(chunk_size=5000):
        yield writer.writerow([_csv_safe(v) for v in row])
