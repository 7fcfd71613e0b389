"""Uploads (IMG-5): validated in the request from the header only, scanned, quarantined.

The web request reads the bytes (capped), checks the header (type from the content, size,
pixels, aspect, frames) and that the file is complete, and asks clamd. Only then is the
raw file written, under a random key in quarantine. A worker decodes it, applies EXIF
orientation, converts to sRGB and re-encodes it without metadata; the raw file is then
deleted. The request never decodes pixels, and a whole batch is refused if any file is
bad, so nothing partial is stored.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.template.defaultfilters import filesizeformat

from accounts.models import AuditAction, User
from accounts.services import audit_log_write
from common.imaging import ImageLimits, ImageRejected, check_complete, inspect_header
from common.storage import storage_delete_everywhere
from images.models import Photo, PhotoStatus, ScanVerdict
from images.scanning import ScannerUnavailable, ScanOutcome, scan_bytes
from images.services.stats import image_stat_add
from orders.models import Order, OrderKind, OrderStatus
from orders.services.orders import order_create_passport, order_discard_empty
from orders.services.status import order_touch


class UploadRefused(Exception):
    """The whole upload is refused; ``message`` is safe to show, nothing was stored."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CheckedUpload:
    data: bytes
    fmt: str
    width: int
    height: int
    instructions: str


def upload_limits() -> ImageLimits:
    return ImageLimits(
        max_bytes=settings.UPLOAD_MAX_BYTES,
        max_pixels=settings.UPLOAD_MAX_PIXELS,
        max_side=settings.UPLOAD_MAX_SIDE,
        max_aspect=settings.UPLOAD_MAX_ASPECT,
    )


def display_name(name: str | None, index: int) -> str:
    """The client's file name, only for messages: no path, no control or bidi characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(ch for ch in base if unicodedata.category(ch)[0] not in {"C", "Z"} or ch == " ")
    clean = clean.strip()[:60]
    return f"“{clean}”" if clean else f"file {index + 1}"


def _read(stream: IO[bytes], limit: int, label: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise UploadRefused(f"{label} is larger than {filesizeformat(limit)}.")
    if not data:
        raise UploadRefused(f"{label} is empty.")
    return data


def upload_check(
    *, stream: IO[bytes], name: str | None, index: int, instructions: str = ""
) -> CheckedUpload:
    """Everything that can be decided without decoding pixels; raises UploadRefused."""
    label = display_name(name, index)
    limits = upload_limits()
    data = _read(stream, limits.max_bytes, label)
    try:
        img = inspect_header(data, limits)
        fmt = img.format or ""
        check_complete(data, fmt)
    except ImageRejected as exc:
        raise UploadRefused(f"{label}: {exc.message}") from exc
    return CheckedUpload(data, fmt, img.width, img.height, instructions.strip()[:2000])


def _scan(data: bytes) -> tuple[str, str]:
    """(verdict, signature): "infected", or a ScanVerdict (a scanner that is down: pending)."""
    try:
        report = scan_bytes(data)
    except ScannerUnavailable:
        return ScanVerdict.PENDING, ""
    if report.outcome is ScanOutcome.INFECTED:
        return "infected", report.signature
    if report.outcome is ScanOutcome.NOT_CONFIGURED:
        return ScanVerdict.NOT_SCANNED, ""
    return ScanVerdict.CLEAN, ""


def _malware(label: str, signature: str) -> UploadRefused:
    return UploadRefused(
        f"{label} contains malware ({signature}) and was refused. "
        "Nothing from this upload was stored."
    )


def _refused_file_scan(stream: IO[bytes]) -> str:
    """The signature found in a file already refused as not an image ("" if none)."""
    try:
        stream.seek(0)
        data = stream.read(settings.UPLOAD_MAX_BYTES + 1)
    except (OSError, ValueError):
        return ""
    if not data or len(data) > settings.UPLOAD_MAX_BYTES:
        return ""
    verdict, signature = _scan(data)
    return signature if verdict == "infected" else ""


def uploads_screen(
    *,
    files: Sequence[tuple[IO[bytes], str | None, str]],
    on_malware: Callable[[str], None],
) -> list[tuple[CheckedUpload, str]]:
    """Check every (stream, client name, note), then scan each: (upload, verdict) pairs.

    The first bad file refuses the batch. A file refused as not an image is still
    scanned, so a malware attempt is reported to *on_malware* (with its signature)
    whichever check would have caught it first.
    """
    checked = []
    for i, (stream, name, note) in enumerate(files):
        try:
            checked.append(upload_check(stream=stream, name=name, index=i, instructions=note))
        except UploadRefused:
            signature = _refused_file_scan(stream)
            if signature:
                on_malware(signature)
                raise _malware(display_name(name, i), signature) from None
            raise
    screened = []
    for i, upload in enumerate(checked):
        verdict, signature = _scan(upload.data)
        if verdict == "infected":
            on_malware(signature)
            raise _malware(display_name(files[i][1], i), signature)
        screened.append((upload, verdict))
    return screened


@contextmanager
def quarantine(order: Order) -> Iterator[Callable[[bytes], str]]:
    """Save raw uploads under random keys; if the block fails, they are deleted again."""
    written: list[str] = []

    def save(data: bytes) -> str:
        key = f"q/{order.storage_token}/{secrets.token_hex(16)}"
        written.append(default_storage.save(key, ContentFile(data)))
        return written[-1]

    try:
        yield save
    except Exception:
        for name in written:  # the rows are gone with the transaction: so go the files
            storage_delete_everywhere(name)
        raise


def photos_add(
    *,
    actor: User | None,
    order: Order,
    files: Sequence[tuple[IO[bytes], str | None, str]],
    ip_address: str | None = None,
) -> list[Photo]:
    """Check, scan and quarantine a batch of (stream, client name, instructions).

    All or nothing: the first bad file refuses the batch before anything is written.
    """
    if order.status != OrderStatus.DRAFT:
        raise UploadRefused("Photos can be added only while the order is a draft.")
    existing = order.photos.count()
    limit = 1 if order.kind == OrderKind.PASSPORT else settings.UPLOAD_MAX_FILES
    if not files:
        raise UploadRefused("Choose at least one photo.")
    if existing + len(files) > limit:
        raise UploadRefused(
            f"An order can have at most {limit} photo{'s' if limit > 1 else ''}; "
            f"you sent {len(files)}" + (f" and it already has {existing}." if existing else ".")
        )
    screened = uploads_screen(
        files=files,
        on_malware=lambda signature: _audit_malware(actor, order, signature, ip_address),
    )
    return _store(actor, order, screened, existing, ip_address)


def passport_order_start(
    *,
    actor: User | None,
    document: str,
    selfie: IO[bytes],
    filename: str | None,
    ip_address: str | None = None,
) -> Order:
    """A passport order with its selfie (web page and API); *actor* None is a guest.

    A refused selfie leaves no order behind: the empty draft is discarded and the
    refusal (UploadRefused) raised; what the scan recorded (a malware audit) stays.
    """
    order = order_create_passport(actor=actor, document=document)
    try:
        photos_add(actor=actor, order=order, files=[(selfie, filename, "")], ip_address=ip_address)
    except UploadRefused:
        order_discard_empty(order=order)
        raise
    return order


def _audit_malware(actor: User | None, order: Order, signature: str, ip: str | None) -> None:
    # Its own transaction: the refusal is recorded even though the request fails.
    with transaction.atomic():
        audit_log_write(
            actor=actor,
            action=AuditAction.MALWARE_REJECTED,
            subject=order.customer,
            ip_address=ip,
            detail={"order": order.reference, "signature": signature},
        )
    image_stat_add(event="upload_malware")


def _store(
    actor: User | None,
    order: Order,
    screened: list[tuple[CheckedUpload, str]],
    existing: int,
    ip_address: str | None,
) -> list[Photo]:
    with quarantine(order) as save, transaction.atomic():
        photos = [
            Photo.objects.create(
                order=order,
                position=existing + i,
                instructions=upload.instructions,
                upload=save(upload.data),
                status=PhotoStatus.PENDING_SCAN
                if verdict == ScanVerdict.PENDING
                else PhotoStatus.PROCESSING,
                scan=verdict,
                size_bytes=len(upload.data),
                width=upload.width,
                height=upload.height,
                source_format=upload.fmt,
            )
            for i, (upload, verdict) in enumerate(screened)
        ]
        order_touch(order=order)
        audit_log_write(
            actor=actor,
            action=AuditAction.PHOTO_UPLOADED,
            subject=order.customer,
            ip_address=ip_address,
            detail={"order": order.reference, "count": len(photos)},
        )
        ids = [p.pk for p in photos]
        transaction.on_commit(lambda: _enqueue(ids))
    for upload, _ in screened:
        image_stat_add(event=f"upload_{upload.fmt.lower()}", size=len(upload.data))
    return photos


def photo_instructions_update(*, actor: User | None, order: Order, photo: Photo, text: str) -> None:
    """The customer's note for one photo, changeable while the order is a draft."""
    del actor  # the customer's own draft: not an audited change
    if order.status != OrderStatus.DRAFT or photo.order_id != order.pk:
        raise UploadRefused("Instructions can be changed only while the order is a draft.")
    photo.instructions = text.strip()[:2000]
    photo.save(update_fields=["instructions", "updated_at"])


def _enqueue(photo_ids: list[int]) -> None:
    from images import tasks

    for photo_id in photo_ids:
        tasks.photo_process.delay(photo_id)
