"""Generic fan-out: one email per recipient, sent by Celery in batches, exactly once.

A fan-out is a set of FanoutItem rows (common/models.py), one per recipient, all pointing
at a *group* (a campaign, a policy version, a breach). Workers send them in batches; the
same engine serves every sort of fan-out, called a *kind*.

How to register a kind
----------------------
In a module ``<app>/fanout.py`` (workers import every app's ``fanout`` module, like
admin.py), or in any module that module imports::

    from common.fanout import FanoutKind, Outgoing, fanout_register

    def _prepare(group_id: int) -> PolicyVersion | None:
        # One query: the group and what every message of the batch shares. None stops
        # the batch (the group is gone or closed); its claimed rows are released.
        return PolicyVersion.objects.filter(pk=group_id, status="published").first()

    def _build(version: PolicyVersion, rows: list[PolicyNoticeSend]) -> Iterator[Outgoing]:
        # Rows are the batch's eligible items, loaded by ``load`` in ONE query. Yield one
        # Outgoing per row (a row without one is SKIPPED; yield Unsendable(pk, why) for
        # one that can never be sent: FAILED). Render what rows share once.
        for row in rows:
            msg = EmailMessage(subject=..., body=..., to=[row.user.email])
            yield Outgoing.from_email(row.pk, msg)

    fanout_register(FanoutKind(
        name="consent.policy_notice",                 # task argument; keep it stable
        model=PolicyNoticeSend,
        group_field="version",                        # the FK to the group
        prepare=_prepare,
        load=lambda qs: qs.select_related("user"),    # what rendering needs; no filters.
                                                      # values("pk", "attempts", ...) works
                                                      # too (dict rows: cheaper per row)
        build=_build,
        eligible=lambda: Q(user__is_active=True),     # optional: checked AT SEND TIME in the
                                                      # same SELECT; others become SKIPPED
        claim_filter=lambda: Q(version__status="published"),  # optional, on the claim
        on_finished=lambda group_id: ...,             # optional, idempotent, when none left
        open_groups=lambda: ...,                      # optional: ids of groups in progress
        batch_size=lambda: 200,
        rate_limit=lambda: None,                      # optional: messages/s, all workers
    ))

Then, in the transaction that creates the rows (bulk, unique per recipient), call
``fanout_enqueue(kind="consent.policy_notice", group_id=version.pk)``: it enqueues the
batch tasks on commit. ``fanout_progress`` counts rows by status for admin pages.

The batch protocol (``fanout_run_batch``; a constant number of SQL queries per batch)
------------------------------------------------------------------------------------
1. ``prepare`` loads the group (1 query).
2. Claim: one UPDATE sets status=sending, a fresh ``claim`` uuid and ``claimed_at`` on up
   to N due pending rows chosen by a ``FOR UPDATE SKIP LOCKED`` subquery, so workers
   running in parallel never claim the same row (1 query).
3. One SELECT loads the claimed rows with what rendering needs, and evaluates the kind's
   eligibility (e.g. "consent granted now") per row in the database (1 query).
4. Send over ONE connection of Django's configured email backend: the SMTP backend's
   smtplib connection gets each prebuilt message's bytes; other backends (locmem in
   tests, files in development) get an EmailMessage carrying the prebuilt message.
   Right after the server accepts a message, its item id is appended to a journal in
   Redis under the claim (RPUSH, written at once; its reply is read later, off the
   sending loop's critical path).
5. Bulk UPDATEs: sent, skipped, failed (one CASE for the errors), back to pending
   (at most 5 queries, whatever the batch size), then one EXISTS to see whether the
   group is finished (``on_finished``).

Errors: a permanent refusal of one recipient (5xx to RCPT or DATA) makes that item FAILED
with the server's answer in ``last_error``. Transient faults (4xx, a dropped connection,
timeouts: accounts.tasks.TRANSIENT) put the item back to PENDING with ``attempts + 1``
and a not-before time in ``claimed_at`` (exponential backoff); after FANOUT_MAX_ATTEMPTS
attempts it is FAILED. A dropped connection ends the batch: the rest go back to pending,
untouched, and a follow-up task is scheduled for when the backoff ends.

Crash safety: a worker that dies mid-batch leaves rows in SENDING under its claim. The
sweep (``fanout_sweep_all``, every minute from beat) treats a claim as dead once its
``claimed_at`` is older than FANOUT_CLAIM_TIMEOUT (longer than Celery's hard time limit,
so the worker really is gone): journaled ids become SENT, the rest PENDING again, and
they are sent by a new batch. The remaining window, honestly: a message the SMTP server
accepted in the instant before its RPUSH reached Redis (microseconds: the command is
written right after the server's "250") is sent again after recovery, so a crash can
cause at most one duplicate per dead batch, and none is lost. (Redis itself must not
lose the journal at the same moment: without persistence, a Redis restart together
with a worker death resends that batch.)

Without Redis (REDIS_URL empty: locmem cache) the journal lives in Django's cache, which
only covers a crash of the batch's code, not of its process; if Redis fails
during a batch, sending goes on without the journal (logged), and only a crash of that
very batch could then resend its messages.

Rate limit: ``rate_limit`` returns messages per second for all workers of the kind
together (a per-second counter in Redis; per process without Redis), or None. Batches
also stop sending after FANOUT_BATCH_SECONDS and release the rest, so a throttled batch
still ends well inside the task time limit.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import logging
import re
import smtplib
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import sanitize_address
from django.db import models, transaction
from django.db.models import BooleanField, Case, ExpressionWrapper, F, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

from common.models import FanoutItem, FanoutStatus
from common.redisclient import redis_client

logger = logging.getLogger(__name__)

PENDING = FanoutStatus.PENDING
SENDING = FanoutStatus.SENDING
SENT = FanoutStatus.SENT
SKIPPED = FanoutStatus.SKIPPED
FAILED = FanoutStatus.FAILED

JOURNAL_TTL_SECONDS = 7 * 24 * 3600  # far longer than any claim can stay unrecovered
HEARTBEAT_SECONDS = 120


# --- Messages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One prebuilt message: envelope sender and recipient, and its bytes (CRLF lines)."""

    item_id: int
    sender: str
    recipient: str
    raw: bytes

    @classmethod
    def from_email(cls, item_id: int, message: EmailMessage) -> Outgoing:
        """From a Django EmailMessage with one recipient (slower; fine for small fan-outs)."""
        encoding = message.encoding or settings.DEFAULT_CHARSET
        recipients = message.recipients()
        if len(recipients) != 1:
            raise ValueError("a fan-out message has exactly one recipient")
        return cls(
            item_id=item_id,
            sender=sanitize_address(message.from_email, encoding),
            recipient=sanitize_address(recipients[0], encoding),
            raw=message.message().as_bytes(linesep="\r\n"),  # type: ignore[call-arg]
        )


@dataclass(frozen=True, slots=True)
class Unsendable:
    """What ``build`` yields for a row that can never be sent (it becomes FAILED)."""

    item_id: int
    error: str


class PrebuiltEmail(EmailMessage):
    """An EmailMessage whose MIME message is already built (for non-SMTP backends).

    Subject, body (the text/plain part) and headers are parsed back so tests reading
    ``mail.outbox`` see ordinary attributes; ``raw`` is exactly what SMTP would carry.
    """

    def __init__(self, outgoing: Outgoing) -> None:
        parsed = email.message_from_bytes(outgoing.raw, policy=email.policy.default)
        body = ""
        text_part = parsed.get_body(preferencelist=("plain",))
        if text_part is not None:
            body = str(text_part.get_content())
        headers = {
            str(key): str(value)
            for key, value in parsed.items()
            if key.lower() not in {"subject", "from", "to", "content-type", "mime-version"}
        }
        super().__init__(
            subject=str(parsed.get("Subject", "")),
            body=body,
            from_email=str(parsed.get("From", outgoing.sender)),
            to=[outgoing.recipient],
            headers=headers,
        )
        self.raw = outgoing.raw

    def message(self) -> Any:  # type: ignore[override]
        return email.message_from_bytes(self.raw, policy=email.policy.compat32)


# --- Kinds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FanoutKind:
    """One sort of fan-out; see the module docstring."""

    name: str
    model: type[FanoutItem]
    group_field: str
    prepare: Callable[[int], Any]
    build: Callable[[Any, list[Any]], Iterable[Outgoing | Unsendable]]
    load: Callable[[QuerySet[Any]], QuerySet[Any]] = lambda qs: qs
    eligible: Callable[[], Any] | None = None
    skip_reason: str = "not eligible at send time"
    claim_filter: Callable[[], Q] | None = None
    on_finished: Callable[[int], None] | None = None
    on_sent: Callable[[Any, list[int]], None] | None = None
    batch_size: Callable[[], int] = lambda: 200
    rate_limit: Callable[[], float | None] | None = None
    parallel: Callable[[], int] = lambda: int(getattr(settings, "FANOUT_PARALLEL", 2))
    # Ids of groups that may still have work (e.g. campaigns sending, or cancelled
    # lately): the sweep looks only at their rows, and finishes one whose last batch
    # died after sending everything. None: the sweep scans every row of the kind.
    open_groups: Callable[[], Iterable[int]] | None = None

    @property
    def group_attname(self) -> str:
        return f"{self.group_field}_id"

    def rows(self) -> QuerySet[Any]:
        return self.model._default_manager.all()

    def items(self, group_id: int) -> QuerySet[Any]:
        return self.rows().filter(**{self.group_attname: group_id})


_KINDS: dict[str, FanoutKind] = {}
_discovered = False


def fanout_register(kind: FanoutKind) -> FanoutKind:
    """Register (or, on re-import, replace) a kind under its name."""
    _KINDS[kind.name] = kind
    return kind


def _discover() -> None:
    global _discovered
    if not _discovered:
        autodiscover_modules("fanout")
        _discovered = True


def fanout_kind(name: str) -> FanoutKind:
    if name not in _KINDS:
        _discover()
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"No fan-out kind {name!r} is registered") from None


def fanout_kinds() -> list[FanoutKind]:
    _discover()
    return list(_KINDS.values())


# --- Settings -------------------------------------------------------------------------------


def _max_attempts() -> int:
    return int(getattr(settings, "FANOUT_MAX_ATTEMPTS", 5))


def _claim_timeout() -> timedelta:
    # A claim older than Celery's hard time limit belongs to a worker that is gone.
    default = int(getattr(settings, "CELERY_TASK_TIME_LIMIT", 360)) + 60
    return timedelta(seconds=int(getattr(settings, "FANOUT_CLAIM_TIMEOUT", default)))


def _batch_seconds() -> float:
    return float(getattr(settings, "FANOUT_BATCH_SECONDS", 120))


def fanout_backoff(attempts: int) -> int:
    """Seconds before a transiently failed item is tried again: 30 s doubling, at most 10 min."""
    return int(min(30 * 2 ** max(attempts - 1, 0), 600))


# --- Redis: journal, heartbeat, rate -------------------------------------------------------


def _redis() -> Any:
    return redis_client(timeout=2)


def _key(*parts: object) -> str:
    return ":".join([settings.CACHE_PREFIX, "fanout", *map(str, parts)])


class Journal:
    """The ids the SMTP server accepted in one claimed batch (crash recovery).

    Each RPUSH is written to Redis right after the acceptance, on a connection of its
    own; its reply is read just before the next write (by then it has long arrived), so
    the journal adds no round trip to the sending loop. What matters for recovery is
    that the command reached Redis, which happens within microseconds of the write.
    """

    def __init__(self, claim: uuid.UUID) -> None:
        self.key = _key("journal", claim)
        self.client = _redis()
        self.local: list[int] = []
        self.broken = False
        self.conn: Any = None
        self.unread = 0
        key = self.key.encode()
        self._prefix = b"*3\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n" % (len(key), key)

    def _fail(self, exc: Exception) -> None:
        # Redis down: keep sending; only a crash of this very batch could now resend.
        self.broken = True
        logger.warning("fan-out journal unavailable (%s); continuing without it", exc)
        if self.conn is not None:
            try:
                self.conn.disconnect()
                self.client.connection_pool.release(self.conn)
            except Exception:
                logger.info("could not release the journal connection", exc_info=True)
            self.conn = None

    def _collect(self) -> None:
        while self.unread:
            self.conn.read_response()
            self.unread -= 1

    def record(self, item_id: int) -> None:
        self.local.append(item_id)
        if self.broken:
            return
        try:
            if self.client is None:
                cache.set(self.key, self.local, JOURNAL_TTL_SECONDS)
                return
            if self.conn is None:
                self.conn = self.client.connection_pool.get_connection()
                self.conn.send_command("RPUSH", self.key, item_id)
                self.conn.send_command("EXPIRE", self.key, JOURNAL_TTL_SECONDS)
                self.unread = 2
                return
            self._collect()
            # Packed by hand: the key is fixed, only the id changes (saves redis-py's
            # per-command packing on the sending loop).
            ident = str(item_id).encode()
            self.conn.send_packed_command(
                [self._prefix + b"$%d\r\n%s\r\n" % (len(ident), ident)], check_health=False
            )
            self.unread = 1
        except Exception as exc:
            self._fail(exc)

    def close(self) -> None:
        """Read the last replies and give the connection back (end of the sending loop)."""
        if self.conn is None:
            return
        try:
            self._collect()
        except Exception as exc:
            self._fail(exc)
            return
        self.client.connection_pool.release(self.conn)
        self.conn = None

    @staticmethod
    def read(claim: uuid.UUID) -> set[int]:
        key = _key("journal", claim)
        client = _redis()
        if client is not None:
            return {int(x) for x in client.lrange(key, 0, -1)}
        return {int(x) for x in cache.get(key) or []}

    @staticmethod
    def drop(claim: uuid.UUID) -> None:
        key = _key("journal", claim)
        try:
            client = _redis()
            if client is not None:
                client.delete(key)
            else:
                cache.delete(key)
        except Exception:  # expires on its own
            logger.warning("could not drop fan-out journal %s", key)


def _heartbeat(kind: str, group_id: int) -> None:
    # Tells the sweep this group's chain of batches is alive, so it does not start another.
    try:
        cache.set(_key("beat", kind, group_id), 1, HEARTBEAT_SECONDS)
    except Exception:
        logger.warning("could not write the fan-out heartbeat")


def _alive(kind: str, group_id: int) -> bool:
    try:
        return cache.get(_key("beat", kind, group_id)) is not None
    except Exception:
        return False


class Throttle:
    """At most *rate* messages per second for a kind, across workers (Redis) or locally."""

    def __init__(self, kind: str, rate: float | None) -> None:
        self.kind = kind
        self.rate = rate
        self.client = _redis() if rate else None
        self.last = 0.0

    def wait(self) -> None:
        if not self.rate:
            return
        if self.client is None:
            gap = 1.0 / self.rate
            delay = self.last + gap - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.last = time.monotonic()
            return
        limit = max(int(self.rate), 1)
        while True:
            now = time.time()
            second = int(now)
            key = _key("rate", self.kind, second)
            try:
                pipe = self.client.pipeline(transaction=False)
                pipe.incr(key)
                pipe.expire(key, 5)
                count = int(pipe.execute()[0])
            except Exception:  # fall back to local pacing rather than stop sending
                self.client = None
                self.wait()
                return
            if count <= limit:
                return
            time.sleep(second + 1 - now + 0.001)


# --- The batch --------------------------------------------------------------------------------


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retry: int = 0
    released: int = 0
    more: bool = False  # a full batch was claimed: probably more pending, continue the chain
    retry_in: int | None = None  # a transient fault: try again in this many seconds
    finished: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Outcome:
    sent: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    retry: dict[int, str] = field(default_factory=dict)
    attempted: set[int] = field(default_factory=set)
    abort_error: str = ""


def _claim(kind: FanoutKind, group_id: int, size: int, now: datetime) -> uuid.UUID | None:
    claim = uuid.uuid4()
    due = (
        kind.items(group_id)
        .filter(status=PENDING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lte=now))
    )
    if kind.claim_filter is not None:
        due = due.filter(kind.claim_filter())
    # SKIP LOCKED: parallel workers each take different rows; of=self: never lock the
    # group's row (a join in claim_filter) or every worker would skip everything.
    ids = due.order_by("pk").select_for_update(skip_locked=True, of=("self",)).values("pk")[:size]
    with transaction.atomic():
        claimed = kind.rows().filter(pk__in=ids).update(status=SENDING, claim=claim, claimed_at=now)
    return claim if claimed else None


def _smtp_code(exc: BaseException) -> int:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return int(codes[0]) if codes else 0
    return int(getattr(exc, "smtp_code", 0) or 0)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        parts = [
            f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
            for code, msg in exc.recipients.values()
        ]
        return ("refused: " + "; ".join(parts))[:300]
    error = getattr(exc, "smtp_error", b"")
    if isinstance(error, bytes):
        error = error.decode(errors="replace")
    code = getattr(exc, "smtp_code", "")
    text = f"{type(exc).__name__}: {code} {error}".strip() if code else f"{exc!r}"
    return text[:300]


# An address smtplib would send unchanged: ASCII, no spaces, brackets or line breaks.
_PLAIN_ADDRESS = re.compile(r"^[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+$")


def _reset(smtp: smtplib.SMTP) -> None:
    """RSET after a refusal, as smtplib's sendmail does (a dropped link shows next time)."""
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


class _Sender:
    """One connection of the configured backend for a whole batch."""

    def __init__(self) -> None:
        self.backend: BaseEmailBackend = get_connection(fail_silently=False)
        self.smtp: smtplib.SMTP | None = None
        self.size = False

    def __enter__(self) -> _Sender:
        self.backend.open()
        if isinstance(self.backend, SMTPBackend):
            self.smtp = self.backend.connection
            assert self.smtp is not None
            self.smtp.ehlo_or_helo_if_needed()
            self.size = bool(self.smtp.does_esmtp and self.smtp.has_extn("size"))
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.backend.close()
        except Exception:  # closing a dead connection must not hide the batch's outcome
            logger.info("closing the email connection failed", exc_info=True)

    def send(self, out: Outgoing) -> None:
        if self.smtp is None:
            self.backend.send_messages([PrebuiltEmail(out)])
        elif _PLAIN_ADDRESS.match(out.sender) and _PLAIN_ADDRESS.match(out.recipient):
            self._sendmail(self.smtp, out)
        else:
            self.smtp.sendmail(out.sender, [out.recipient], out.raw)

    def _sendmail(self, smtp: smtplib.SMTP, out: Outgoing) -> None:
        """smtplib's sendmail for one recipient, minus re-parsing addresses we built.

        The raw bytes go as they are; the replies are handled exactly as sendmail does
        (reset after a refusal, close after 421), raising the same exceptions.
        """
        size = f" SIZE={len(out.raw)}" if self.size else ""
        smtp.putcmd("mail", f"FROM:<{out.sender}>{size}")
        code, resp = smtp.getreply()
        if code != 250:
            smtp.close() if code == 421 else _reset(smtp)
            raise smtplib.SMTPSenderRefused(code, resp, out.sender)
        smtp.putcmd("rcpt", f"TO:<{out.recipient}>")
        code, resp = smtp.getreply()
        if code not in (250, 251):
            smtp.close() if code == 421 else _reset(smtp)
            raise smtplib.SMTPRecipientsRefused({out.recipient: (code, resp)})
        code, resp = smtp.data(out.raw)
        if code != 250:
            smtp.close() if code == 421 else _reset(smtp)
            raise smtplib.SMTPDataError(code, resp)


def _transient() -> tuple[type[BaseException], ...]:
    from accounts.tasks import TRANSIENT

    return TRANSIENT


def _send_all(
    kind: FanoutKind,
    messages: Iterable[Outgoing | Unsendable],
    journal: Journal,
    outcome: _Outcome,
    deadline: float,
) -> bool:
    """Send until done (True), or until the deadline or a dropped connection (False)."""
    transient = _transient()
    throttle = Throttle(kind.name, kind.rate_limit() if kind.rate_limit else None)
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.closing(journal))
        try:
            sender = stack.enter_context(_Sender())
        except transient as exc:
            # The server cannot be reached: nothing was attempted, so every message of
            # the batch goes back with a retry (and its backoff) instead of a crash.
            outcome.abort_error = _describe(exc)
            for out in messages:
                if isinstance(out, Unsendable):
                    outcome.failed[out.item_id] = out.error[:300]
                else:
                    outcome.retry[out.item_id] = outcome.abort_error
            return False
        for out in messages:
            if isinstance(out, Unsendable):
                outcome.failed[out.item_id] = out.error[:300]
                continue
            if time.monotonic() > deadline:
                return False  # the rest are released, not attempted
            throttle.wait()
            outcome.attempted.add(out.item_id)
            try:
                sender.send(out)
            except smtplib.SMTPRecipientsRefused as exc:
                # The connection is still fine (smtplib reset the transaction): go on.
                if 500 <= _smtp_code(exc) < 600:
                    outcome.failed[out.item_id] = _describe(exc)
                else:
                    outcome.retry[out.item_id] = _describe(exc)
                continue
            except smtplib.SMTPDataError as exc:
                if 500 <= _smtp_code(exc) < 600:
                    outcome.failed[out.item_id] = _describe(exc)
                else:
                    outcome.retry[out.item_id] = _describe(exc)
                continue
            except transient as exc:
                # Sender refused, connection dropped, timeout: this batch stops here.
                outcome.retry[out.item_id] = _describe(exc)
                outcome.abort_error = _describe(exc)
                return False
            journal.record(out.item_id)
            outcome.sent.append(out.item_id)
    return True


def _finish_rows(
    kind: FanoutKind,
    claim: uuid.UUID,
    outcome: _Outcome,
    attempts: dict[int, int],
    claimed_ids: Sequence[int],
    now: datetime,
) -> BatchResult:
    """The batch's bookkeeping: a bounded number of bulk UPDATEs, whatever its size."""
    result = BatchResult(claimed=len(claimed_ids))
    mine = kind.rows().filter(claim=claim, status=SENDING)
    retry_in: int | None = None
    failed = dict(outcome.failed)
    retry: dict[int, str] = {}
    for item_id, error in outcome.retry.items():
        if attempts.get(item_id, 0) + 1 >= _max_attempts():
            failed[item_id] = f"gave up after {attempts.get(item_id, 0) + 1} attempts: {error}"
        else:
            retry[item_id] = error
    done = set(outcome.sent) | set(outcome.skipped) | set(failed) | set(retry)
    released = [pk for pk in claimed_ids if pk not in done]
    with transaction.atomic():
        if outcome.sent:
            result.sent = mine.filter(pk__in=outcome.sent).update(
                status=SENT, sent_at=now, last_error=""
            )
        if outcome.skipped:
            result.skipped = mine.filter(pk__in=outcome.skipped).update(
                status=SKIPPED, last_error=kind.skip_reason[:300]
            )
        if failed:
            result.failed = mine.filter(pk__in=list(failed)).update(
                status=FAILED,
                attempts=F("attempts") + 1,
                last_error=Case(
                    *(When(pk=pk, then=Value(err[:300])) for pk, err in failed.items()),
                    default=F("last_error"),
                ),
            )
        if retry:
            # Backoff by the largest attempt count of the batch: one UPDATE for them all.
            retry_in = fanout_backoff(max(attempts.get(pk, 0) + 1 for pk in retry))
            result.retry = mine.filter(pk__in=list(retry)).update(
                status=PENDING,
                claim=None,
                claimed_at=now + timedelta(seconds=retry_in),
                attempts=F("attempts") + 1,
                last_error=Case(
                    *(When(pk=pk, then=Value(err[:300])) for pk, err in retry.items()),
                    default=F("last_error"),
                ),
            )
        if released:
            # Not attempted (the connection dropped, or the batch ran out of time): after a
            # dropped connection they wait the same backoff; otherwise they are due now.
            wait = retry_in or fanout_backoff(1)
            not_before = now + timedelta(seconds=wait) if outcome.abort_error else None
            result.released = mine.filter(pk__in=released).update(
                status=PENDING, claim=None, claimed_at=not_before
            )
    result.retry_in = retry_in
    return result


def fanout_run_batch(*, kind: str, group_id: int, size: int | None = None) -> BatchResult:
    """Claim, load, send and record one batch of *kind* for *group_id* (see the docstring)."""
    spec = fanout_kind(kind)
    _heartbeat(kind, group_id)
    context = spec.prepare(group_id)
    if context is None:
        return BatchResult(finished=_finish_if_done(spec, group_id))
    size = size or spec.batch_size()
    now = timezone.now()
    claim = _claim(spec, group_id, size, now)
    if claim is None:
        return BatchResult(finished=_finish_if_done(spec, group_id))

    # Group and status first: the (group, status, id) index finds the claimed rows.
    qs = spec.load(spec.items(group_id).filter(status=SENDING, claim=claim))
    if spec.eligible is not None:
        qs = qs.annotate(
            fanout_ok=ExpressionWrapper(Q(spec.eligible()), output_field=BooleanField())
        )
    rows = list(qs)
    # Rows are model instances, or dicts when ``load`` used values() (cheaper per row).
    if rows and isinstance(rows[0], dict):
        keyed = [(row["pk"], row["attempts"], row.get("fanout_ok", True), row) for row in rows]
    else:
        keyed = [(row.pk, row.attempts, getattr(row, "fanout_ok", True), row) for row in rows]
    attempts = {pk: tries for pk, tries, _, _ in keyed}
    claimed_ids = [pk for pk, _, _, _ in keyed]
    outcome = _Outcome()
    eligible_rows = [row for _, _, ok, row in keyed if ok]
    eligible_ids = [pk for pk, _, ok, _ in keyed if ok]
    outcome.skipped = [pk for pk, _, ok, _ in keyed if not ok]
    journal = Journal(claim)
    deadline = time.monotonic() + _batch_seconds()
    built: set[int] = set()

    def tracked() -> Iterable[Outgoing | Unsendable]:
        for out in spec.build(context, eligible_rows):
            built.add(out.item_id)
            yield out

    try:
        if _send_all(spec, tracked(), journal, outcome, deadline):
            # Rows the kind built no message for (e.g. the recipient is gone): SKIPPED.
            outcome.skipped += [pk for pk in eligible_ids if pk not in built]
    except BaseException as exc:
        # A bug or the soft time limit: record what was sent, and count an attempt for
        # the rest, so a message that always crashes ends FAILED instead of looping.
        error = f"batch error: {exc!r}"[:300]
        settled = set(outcome.sent) | set(outcome.skipped) | set(outcome.failed)
        for pk in claimed_ids:
            if pk not in settled:
                outcome.retry.setdefault(pk, error)
        _finish_rows(spec, claim, outcome, attempts, claimed_ids, timezone.now())
        Journal.drop(claim)
        raise
    result = _finish_rows(spec, claim, outcome, attempts, claimed_ids, timezone.now())
    Journal.drop(claim)
    if spec.on_sent is not None and outcome.sent:
        spec.on_sent(context, outcome.sent)
    result.more = result.claimed >= size and not outcome.abort_error
    if not result.more:
        result.finished = _finish_if_done(spec, group_id)
    return result


def _finish_if_done(spec: FanoutKind, group_id: int) -> bool:
    """Call on_finished when nothing is pending or being sent (one EXISTS query)."""
    if spec.items(group_id).filter(status__in=[PENDING, SENDING]).exists():
        return False
    if spec.on_finished is not None:
        spec.on_finished(group_id)
    return True


# --- Starting, progress, recovery -----------------------------------------------------------


def fanout_enqueue(*, kind: str, group_id: int, parallel: int | None = None) -> None:
    """Start *parallel* chains of batches once the current transaction commits."""
    spec = fanout_kind(kind)
    count = max(parallel if parallel is not None else spec.parallel(), 1)

    def enqueue() -> None:
        # consent.tasks holds the generic tasks (beat's schedule names them there).
        from consent.tasks import fanout_batch

        for _ in range(count):
            fanout_batch.delay(kind, group_id)

    transaction.on_commit(enqueue)


def fanout_progress(*, kind: str, group_id: int) -> dict[str, int]:
    """How many items of the group are in each status (every status present, 0 if none)."""
    spec = fanout_kind(kind)
    counts = {status.value: 0 for status in FanoutStatus}
    for row in spec.items(group_id).values("status").annotate(n=models.Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


def fanout_cancel(*, kind: str, group_id: int, reason: str) -> int:
    """Skip every pending item of the group (batches already sending finish theirs)."""
    spec = fanout_kind(kind)
    return (
        spec.items(group_id)
        .filter(status=PENDING)
        .update(status=SKIPPED, claim=None, last_error=reason[:300])
    )


def fanout_recover_stale(*, kind: str, now: datetime | None = None) -> dict[str, int]:
    """Settle claims whose worker died: journaled ids SENT, the rest PENDING again."""
    spec = fanout_kind(kind)
    return _recover(spec, now or timezone.now(), _scope(spec))[0]


def _scope(spec: FanoutKind) -> QuerySet[Any]:
    """The rows the sweep looks at: those of open groups when the kind names them, so the
    (group, status) index serves it however many old sends the table keeps."""
    if spec.open_groups is None:
        return spec.rows()
    return spec.rows().filter(**{f"{spec.group_attname}__in": list(spec.open_groups())})


def _recover(
    spec: FanoutKind, now: datetime, scope: QuerySet[Any]
) -> tuple[dict[str, int], set[int]]:
    """(counts, ids of the groups whose dead batches were recovered)."""
    cutoff = now - _claim_timeout()
    stale = scope.filter(status=SENDING, claimed_at__lt=cutoff)
    pairs = set(stale.values_list("claim", spec.group_attname).distinct())
    claims = {claim for claim, _ in pairs}
    groups = {group for _, group in pairs if group is not None}
    counts = {"sent": 0, "pending": 0, "failed": 0}
    for claim in claims:
        journaled = Journal.read(claim) if claim is not None else set()
        rows = spec.rows().filter(status=SENDING, claim=claim, claimed_at__lt=cutoff)
        with transaction.atomic():
            if journaled:
                counts["sent"] += rows.filter(pk__in=journaled).update(
                    status=SENT, sent_at=now, last_error=""
                )
            # Not journaled: never accepted (or in the tiny window, see the docstring).
            # An attempt is counted so a message that kills its worker ends FAILED.
            counts["failed"] += rows.filter(attempts__gte=_max_attempts() - 1).update(
                status=FAILED,
                attempts=F("attempts") + 1,
                last_error="worker died while sending, too many times",
            )
            counts["pending"] += rows.update(
                status=PENDING,
                claim=None,
                claimed_at=None,
                attempts=F("attempts") + 1,
                last_error="worker died while sending",
            )
        if claim is not None:
            Journal.drop(claim)
    return counts, groups


def fanout_sweep_all(*, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """For every kind: recover dead batches, restart stalled groups, finish done ones."""
    now = now or timezone.now()
    report: dict[str, dict[str, int]] = {}
    for spec in fanout_kinds():
        scope = _scope(spec)
        counts, recovered = _recover(spec, now, scope)
        due = scope.filter(status=PENDING).filter(
            Q(claimed_at__isnull=True) | Q(claimed_at__lte=now)
        )
        if spec.claim_filter is not None:
            due = due.filter(spec.claim_filter())
        groups = set(due.values_list(spec.group_attname, flat=True).distinct())
        restarted = 0
        for group_id in groups:
            # A group whose dead batch was just recovered needs a new chain even if
            # another one still looks alive; an extra chain only adds parallelism.
            if group_id is None:
                continue
            if group_id in recovered or not _alive(spec.name, group_id):
                fanout_enqueue(kind=spec.name, group_id=group_id, parallel=1)
                restarted += 1
        counts["restarted"] = restarted
        counts["finished"] = 0
        finishable = _open_groups(spec)
        for group_id in finishable:
            if group_id not in groups and _finish_if_done(spec, group_id):
                counts["finished"] += 1
        report[spec.name] = counts
    return report


def _open_groups(spec: FanoutKind) -> list[int]:
    return list(spec.open_groups()) if spec.open_groups is not None else []
