"""Access and portability: the registry-driven, streamed export archive (DSR-1).

One archive per ticket (ExportArchive, OneToOne). ``export_build`` claims it with a
conditional UPDATE, so a second delivery of the task, or the sweep, finds it claimed or
ready and does nothing; a claim older than the task's hard time limit means its worker
died and may be retaken. The zip is written to a local temporary file (streaming,
bounded memory: export_archive.py), then stored privately under a key fixed on the
first attempt, so a retry overwrites the same object: exactly one archive. Only after it
is stored, hashed and measured does the archive become READY, in the same transaction
as the ticket's fulfilment; a failure leaves it FAILED with the reason on the ticket
(shown to staff), retried by the sweep with backoff. Never a half archive marked ready.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import Storage, default_storage
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditAction, User
from accounts.services import audit_log_write
from common.storage import storage_delete_everywhere
from dsr.models import (
    ArchiveStatus,
    ExportArchive,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
)
from dsr.services.export_archive import ArchiveSummary, archive_write
from dsr.services.tickets import ticket_block, ticket_fulfil, ticket_transition

logger = logging.getLogger(__name__)

SIGNING_SALT = "dsr.export.download"
KEY_PREFIX = "dsr-exports"
BACKOFF_MAX = timedelta(hours=6)


class DownloadRefused(Exception):
    """A download link that cannot be served; *status* is 404 (bad link) or 410 (gone)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --- Start -----------------------------------------------------------------------------------
def export_start(*, ticket: Ticket, actor: User | None) -> ExportArchive:
    """The ticket is verified: in progress, one archive row, its build queued after commit."""
    from dsr.tasks import export_build as export_build_task

    with transaction.atomic():
        if ticket.status != TicketStatus.IN_PROGRESS:
            ticket = ticket_transition(
                ticket=ticket,
                to=TicketStatus.IN_PROGRESS,
                actor=actor,
                note="The export archive is being built.",
            )
        archive, _ = ExportArchive.objects.get_or_create(ticket=ticket)
        archive_id = archive.pk
        transaction.on_commit(lambda: export_build_task.delay(archive_id))
    return archive


# --- Build -----------------------------------------------------------------------------------
def _stale_before(now: datetime) -> datetime:
    # A worker is killed at the hard time limit; a claim older than that (plus slack for
    # the kill itself) belongs to a worker that is gone.
    return now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def _claim(archive_id: int, now: datetime) -> bool:
    claimable = Q(status__in=[ArchiveStatus.PENDING, ArchiveStatus.FAILED]) | Q(
        status=ArchiveStatus.BUILDING, claimed_at__lt=_stale_before(now)
    )
    return bool(
        ExportArchive.objects.filter(claimable, pk=archive_id).update(
            status=ArchiveStatus.BUILDING,
            claimed_at=now,
            attempts=F("attempts") + 1,
            updated_at=now,
            # Each attempt pushes the retention clock on: an archive still being retried
            # stays, one given up on (its request closed) goes, with any file, a week
            # after its last attempt.
            expires_at=now + timedelta(days=settings.DSR_EXPORT_DAYS),
        )
    )


def _archive_name(archive: ExportArchive) -> str:
    """Fixed on the first attempt and stored: every retry writes the same key."""
    if archive.file.name:
        return archive.file.name
    name = f"{KEY_PREFIX}/{archive.ticket.reference}/{secrets.token_urlsafe(24)}.zip"
    ExportArchive.objects.filter(pk=archive.pk).update(file=name)
    archive.file.name = name
    return name


def archive_store(*, path: str, name: str, storage: Storage | None = None) -> None:
    """Store the local zip at *name*, replacing any earlier attempt's object entirely.

    Every old version of the key is deleted first (a versioned bucket keeps them), so a
    retried build leaves exactly one object behind.
    """
    storage = storage or default_storage
    if storage.exists(name):
        storage_delete_everywhere(name, storage)
    bucket = getattr(storage, "bucket", None)
    if bucket is None:
        with open(path, "rb") as fh:
            saved = storage.save(name, File(fh, name=os.path.basename(name)))
        if saved != name:
            raise OSError(f"the storage stored the archive as {saved!r}, not {name!r}")
        return
    from boto3.s3.transfer import TransferConfig
    from storages.utils import clean_name

    key = storage._normalize_name(clean_name(name))  # type: ignore[attr-defined]
    params = storage._get_write_parameters(key)  # type: ignore[attr-defined]
    params["ContentType"] = "application/zip"
    # From the file's name, parts are read from disk as they are sent, not held in
    # memory; a few parts in flight keep the upload fast and the buffers small.
    config = TransferConfig(max_concurrency=4, use_threads=getattr(storage, "use_threads", True))
    bucket.Object(key).upload_file(path, ExtraArgs=params, Config=config)


def _ready_note(archive: ExportArchive, summary: ArchiveSummary) -> str:
    expires = timezone.localtime(archive.expires_at) if archive.expires_at else None
    until = f" until {expires:%Y-%m-%d %H:%M}" if expires else ""
    return (
        f"Your data is ready to download{until}: {summary.rows} records in "
        f"{sum(1 for e in summary.entries if e.rows)} documents, {summary.files} stored "
        f"files and {summary.invoices} invoices. The archive's index.html explains each "
        "part; the JSON documents are for moving your data to another service."
    )


def _finish(
    archive: ExportArchive, *, path: str, summary: ArchiveSummary, claimed_at: datetime
) -> bool:
    """READY and the ticket fulfilled together, only once the archive is stored."""
    now = timezone.now()
    size, sha = summary.size, summary.sha256
    if size != os.path.getsize(path):
        raise OSError("the archive on disk is not the one written")
    with transaction.atomic():
        locked = ExportArchive.objects.select_for_update().get(pk=archive.pk)
        if locked.status != ArchiveStatus.BUILDING or locked.claimed_at != claimed_at:
            return False  # our claim was taken over (thought dead): that build finishes
        locked.status = ArchiveStatus.READY
        locked.size = size
        locked.sha256 = sha
        locked.contents = summary.contents()
        locked.ready_at = now
        locked.expires_at = now + timedelta(days=settings.DSR_EXPORT_DAYS)
        locked.last_error = ""
        locked.save()
        ticket = locked.ticket
        if ticket.status in (TicketStatus.IN_PROGRESS, TicketStatus.VERIFIED):
            ticket_fulfil(
                ticket=ticket,
                actor=None,
                note=_ready_note(locked, summary),
                outcome={
                    "archive": {
                        "size": size,
                        "sha256": sha,
                        "expires_at": locked.expires_at.isoformat(),
                        **locked.contents,
                    }
                },
            )
    return True


def _is_transient(exc: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, OSError | DatabaseError | BotoCoreError | ClientError)


def _fail(archive_id: int, exc: BaseException) -> None:
    """FAILED with the reason on the ticket; the sweep retries it with backoff.

    Storage or database faults are expected now and then; anything else is a bug, logged
    with its traceback, and retried on the same backoff so it cannot spin.
    """
    if _is_transient(exc):
        reason = (
            f"Export archive: storage or database unavailable ({type(exc).__name__}); retrying."
        )
    else:
        logger.exception("export archive %s failed", archive_id)
        reason = f"Export archive failed ({type(exc).__name__}); retrying. Staff: see the logs."
    detail = f"{type(exc).__name__}: {exc}"[:300]
    with transaction.atomic():
        updated = ExportArchive.objects.filter(pk=archive_id, status=ArchiveStatus.BUILDING).update(
            status=ArchiveStatus.FAILED, last_error=detail, updated_at=timezone.now()
        )
        ticket = Ticket.objects.filter(archive__pk=archive_id).first()
        if updated and ticket is not None:
            ticket_block(ticket=ticket, reason=reason)


def export_build(*, archive_id: int) -> str:
    """Build, store and deliver one archive; safe to run twice or after a crash."""
    now = timezone.now()
    if not _claim(archive_id, now):
        return "not claimed"  # ready, expired, or another worker is on it
    archive = (
        ExportArchive.objects.select_related("ticket", "ticket__user").filter(pk=archive_id).first()
    )
    if archive is None:
        return "gone"  # the request was erased meanwhile
    ticket = archive.ticket
    if not ticket.is_open:
        ExportArchive.objects.filter(pk=archive_id).update(
            status=ArchiveStatus.FAILED, last_error=f"the request is {ticket.status}"
        )
        return "ticket not open"
    try:
        name = _archive_name(archive)
        with tempfile.TemporaryDirectory(
            prefix="dsr-export-", dir=settings.FILE_UPLOAD_TEMP_DIR
        ) as tmp:
            path = os.path.join(tmp, "archive.zip")
            with open(path, "wb") as out:
                summary = archive_write(ticket=ticket, out=out, now=now)
            archive_store(path=path, name=name)
            finished = _finish(archive, path=path, summary=summary, claimed_at=now)
    except Exception as exc:
        try:
            _fail(archive_id, exc)
        except Exception:  # the database itself is gone: the stale claim is retaken later
            logger.exception("export archive %s: could not record the failure", archive_id)
        return "failed"
    return "ready" if finished else "superseded"


def _backoff(attempts: int) -> timedelta:
    return min(timedelta(minutes=2 ** max(0, attempts - 1)), BACKOFF_MAX)


def export_resume(*, now: datetime) -> int:
    """The sweep: re-enqueue archives never started, failed (after backoff) or abandoned."""
    from dsr.tasks import export_build as export_build_task

    due: list[int] = []
    candidates = ExportArchive.objects.filter(
        Q(status__in=[ArchiveStatus.PENDING, ArchiveStatus.FAILED])
        | Q(status=ArchiveStatus.BUILDING, claimed_at__lt=_stale_before(now)),
        ticket__status__in=[TicketStatus.IN_PROGRESS, TicketStatus.VERIFIED],
    ).values_list("pk", "status", "attempts", "updated_at")
    for pk, status, attempts, updated_at in candidates:
        if status == ArchiveStatus.PENDING and updated_at > now - timedelta(minutes=2):
            continue  # just created: its own message is on the way
        if status == ArchiveStatus.FAILED and updated_at > now - _backoff(attempts):
            continue
        due.append(pk)
    for pk in due:
        export_build_task.delay(pk)
    return len(due)


# --- Download links --------------------------------------------------------------------------
def export_download_url(*, ticket: Ticket) -> str:
    """The absolute link for the subject's email: signed, carries the archive id, 7 days."""
    archive = ExportArchive.objects.filter(ticket=ticket).only("pk").first()
    if archive is None:
        return ""
    token = signing.dumps({"a": archive.pk, "t": ticket.reference}, salt=SIGNING_SALT)
    return settings.SITE_URL + reverse("dsr:download", args=[token])


EXPIRED = "This archive has expired and was deleted. You can ask for a new copy of your data."


def export_archive_for_token(*, token: str, now: datetime | None = None) -> ExportArchive:
    """The archive a link names, if it can still be downloaded (DownloadRefused otherwise)."""
    max_age = timedelta(days=settings.DSR_EXPORT_DAYS)
    try:
        data = signing.loads(token, salt=SIGNING_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise DownloadRefused(
            "This download link has expired. You can ask for a new copy of your data.",
            status=410,
        ) from exc
    except signing.BadSignature as exc:
        raise DownloadRefused("This download link is not valid.", status=404) from exc
    if not isinstance(data, dict) or not isinstance(data.get("a"), int):
        raise DownloadRefused("This download link is not valid.", status=404)
    archive = (
        ExportArchive.objects.select_related("ticket", "ticket__user")
        .filter(pk=data["a"], ticket__reference=data.get("t"))
        .first()
    )
    if archive is None:
        raise DownloadRefused(EXPIRED, status=410)
    export_archive_check(archive=archive, now=now)
    return archive


def export_archive_check(*, archive: ExportArchive, now: datetime | None = None) -> None:
    """Refuse an archive that cannot be downloaded now: expired (410) or not built (404)."""
    now = now or timezone.now()
    if archive.status == ArchiveStatus.EXPIRED or (
        archive.expires_at is not None and archive.expires_at <= now
    ):
        raise DownloadRefused(EXPIRED, status=410)
    if archive.status != ArchiveStatus.READY or not archive.file.name:
        raise DownloadRefused("This archive is not ready yet. Please try again later.", status=404)


@dataclass(frozen=True)
class Download:
    name: str  # in the storage
    filename: str  # offered to the browser


def export_download_record(
    *, archive: ExportArchive, actor: User | None, ip_address: str | None = None
) -> Download:
    """Audit one download (audit row, ticket history, counter) in one transaction."""
    ticket = archive.ticket
    with transaction.atomic():
        ExportArchive.objects.filter(pk=archive.pk).update(downloads=F("downloads") + 1)
        TicketEvent.objects.create(
            ticket=ticket,
            kind=TicketEventKind.DOWNLOAD,
            actor=actor if actor is not None and actor.is_authenticated else None,
            note="Downloaded by the subject"
            + (" (logged in)" if ticket.user_id else " (email verified)"),
        )
        audit_log_write(
            actor=actor if actor is not None and actor.is_authenticated else None,
            action=AuditAction.DSR_EXPORT_DOWNLOADED,
            subject=ticket.user,
            ip_address=ip_address,
            detail={"ticket": ticket.reference, "archive": archive.pk},
        )
    return Download(name=archive.file.name or "", filename=f"{ticket.reference.lower()}-data.zip")


def export_archive_url(*, download: Download) -> str | None:
    """On S3: a presigned link of at most SIGNED_URL_MAX_AGE; else None (stream it)."""
    if getattr(default_storage, "bucket", None) is None:
        return None
    return str(
        default_storage.url(  # type: ignore[call-arg]
            download.name,
            parameters={
                "ResponseContentDisposition": f'attachment; filename="{download.filename}"',
                "ResponseContentType": "application/zip",
                "ResponseCacheControl": "private, no-store",
            },
            expire=settings.SIGNED_URL_MAX_AGE,
        )
    )


def export_open(*, download: Download) -> Any:
    return default_storage.open(download.name, "rb")
