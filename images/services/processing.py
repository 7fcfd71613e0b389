"""Work done by Celery workers on stored images (IMG-6). The web request never decodes pixels.

Every function here takes ids, claims its work with a conditional update, writes its
output under a deterministic key (a retry overwrites, never duplicates) and is safe to
run twice. Transient storage errors propagate so the task retries with backoff; a bad
image is recorded as a failure the customer and staff can see.
"""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import AuditAction
from accounts.services import audit_log_write
from common.imaging import ImageRejected, sanitize_image
from common.storage import storage_delete_everywhere
from images.models import Photo, PhotoStatus, Result, ResultKind, ScanVerdict
from images.scanning import ScannerUnavailable, ScanOutcome, scan_bytes
from images.services.intake import upload_limits
from images.services.restriction import order_hold, order_restricted
from images.services.stats import image_stat_add
from orders.models import Order, OrderKind
from orders.services.status import order_touch

logger = logging.getLogger(__name__)
CLAIM_TIMEOUT = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def storage_write(name: str, data: bytes) -> str:
    """Write *data* at exactly *name*, replacing what is there (deterministic keys).

    Both backends are configured to overwrite (S3 file_overwrite, local allow_overwrite),
    so a retry replaces its own file instead of adding one under another name.
    """
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:  # a backend that renames would break the retry guarantee
        raise RuntimeError(f"storage renamed {name} to {saved}")
    return saved


def photo_claim(*, photo_id: int) -> Photo | None:
    """Take the photo's processing for this worker, or None if done or held by another."""
    now = timezone.now()
    claimed = Photo.objects.filter(
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_TIMEOUT),
        pk=photo_id,
        status=PhotoStatus.PROCESSING,
    ).update(claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    return Photo.objects.select_related("order").get(pk=photo_id)


def photo_release(*, photo_id: int) -> None:
    """Give the claim back after a transient fault, so the retry can take it."""
    Photo.objects.filter(pk=photo_id).update(claimed_at=None)


def photo_process(*, photo_id: int) -> str:
    photo = photo_claim(photo_id=photo_id)
    if photo is None:
        return "skipped"
    if order_restricted(photo.order):
        # Art. 18 (DSR-1): the upload stays as it is, unclaimed, and is queued again when
        # the restriction is lifted (the stale-claim sweep leaves unclaimed photos alone).
        photo_release(photo_id=photo.pk)
        return order_hold(order=photo.order, what=f"photo {photo.pk}")
    raw = _read(photo.upload.name or "")
    if photo.order.kind == OrderKind.PASSPORT:
        from images.services.passport import passport_make_results

        outcome = passport_make_results(photo=photo, raw=raw)
    else:
        outcome = _clean_original(photo, raw)
    # The raw upload's job is done (clean copy or passport files made): it goes now.
    storage_delete_everywhere(photo.upload.name or "")
    Photo.objects.filter(pk=photo.pk).update(upload="")
    return outcome


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def _clean_original(photo: Photo, raw: bytes) -> str:
    try:
        clean = sanitize_image(io.BytesIO(raw), upload_limits(), quality=92)
    except ImageRejected as exc:
        photo_reject(photo=photo, reason=exc.message)
        return "rejected"
    name = storage_write(
        f"o/{photo.order.storage_token}/p/{photo.pk}.{clean.extension}", clean.content
    )
    with transaction.atomic():
        done = Photo.objects.filter(pk=photo.pk, status=PhotoStatus.PROCESSING).update(
            file=name,
            status=PhotoStatus.READY,
            width=clean.width,
            height=clean.height,
            claimed_at=None,
        )
        if done:
            order_touch(order=photo.order)
    image_stat_add(event="original_cleaned", size=len(clean.content))
    return "ready"


def photo_reject(*, photo: Photo, reason: str) -> None:
    """A file that turned out not to be a usable image: shown to the customer, never served."""
    Photo.objects.filter(pk=photo.pk).update(
        status=PhotoStatus.REJECTED, reject_reason=reason[:300], claimed_at=None
    )
    image_stat_add(event="upload_rejected_late")


def photo_fail(*, photo_id: int, reason: str) -> None:
    """Retries exhausted on a storage fault: say so, keep the row (retention still applies)."""
    photo = Photo.objects.select_related("order").filter(pk=photo_id).first()
    if photo is None:
        return
    photo_reject(photo=photo, reason=reason)
    Order.objects.filter(pk=photo.order_id).update(failure_message=reason[:300])


def photos_rescan_pending() -> dict[str, int]:
    """The scanner was down at upload: scan quarantined files now (fail closed: IMG-5)."""
    counts = {"clean": 0, "infected": 0, "waiting": 0}
    for photo in Photo.objects.filter(status=PhotoStatus.PENDING_SCAN).select_related("order"):
        try:
            report = scan_bytes(_read(photo.upload.name or ""))
        except ScannerUnavailable:
            counts["waiting"] += 1
            continue
        if report.outcome is ScanOutcome.INFECTED:
            _quarantine_infected(photo, report.signature)
            counts["infected"] += 1
            continue
        verdict = (
            ScanVerdict.CLEAN if report.outcome is ScanOutcome.CLEAN else ScanVerdict.NOT_SCANNED
        )
        updated = Photo.objects.filter(pk=photo.pk, status=PhotoStatus.PENDING_SCAN).update(
            status=PhotoStatus.PROCESSING, scan=verdict
        )
        if updated:
            from images import tasks

            transaction.on_commit(partial(tasks.photo_process.delay, photo.pk))
            counts["clean"] += 1
    return counts


def _quarantine_infected(photo: Photo, signature: str) -> None:
    storage_delete_everywhere(photo.upload.name or "")
    with transaction.atomic():
        Photo.objects.filter(pk=photo.pk).update(
            upload="",
            status=PhotoStatus.REJECTED,
            reject_reason="The file contains malware and was deleted.",
        )
        audit_log_write(
            actor=None,
            action=AuditAction.MALWARE_REJECTED,
            subject=photo.order.customer,
            detail={"order": photo.order.reference, "signature": signature, "late": True},
        )
    image_stat_add(event="upload_malware")


def photos_requeue_stale() -> int:
    """Photos whose worker died after its claim: queue them again (the claim has expired)."""
    stale = Photo.objects.filter(
        status=PhotoStatus.PROCESSING, claimed_at__lt=timezone.now() - CLAIM_TIMEOUT
    ).values_list("pk", flat=True)
    from images import tasks

    ids = list(stale)
    for photo_id in ids:
        transaction.on_commit(partial(tasks.photo_process.delay, photo_id))
    return len(ids)


def result_store(
    *,
    order: Order,
    photo: Photo | None,
    kind: ResultKind,
    data: bytes,
    width: int,
    height: int,
    operations: list[str] | None = None,
    content_type: str = "image/jpeg",
    count_stat: bool = True,
) -> Result:
    """An automated result under a deterministic key: running twice overwrites the same file."""
    ext = "png" if content_type == "image/png" else "jpg"
    photo_part = photo.pk if photo else 0
    key = f"o/{order.storage_token}/r/{kind}-{photo_part}-{order.revision_round}.{ext}"
    name = storage_write(key, data)
    result, _ = Result.objects.update_or_create(
        order=order,
        kind=kind,
        round=order.revision_round,
        photo=photo,
        created_by=None,
        defaults={
            "file": name,
            "size_bytes": len(data),
            "width": width,
            "height": height,
            "operations": operations or [],
            "content_type": content_type,
            "ready": True,
        },
    )
    if count_stat:
        image_stat_add(event=f"result_{kind}", size=len(data))
    return result


def photo_automate(*, photo_id: int, steps: list[list[object]]) -> str:
    """Apply a chain of retouch operations to a clean original; store an automated result."""
    from PIL import Image

    from images.operations.retouch import apply_chain, encode

    photo = (
        Photo.objects.select_related("order")
        .filter(pk=photo_id, status=PhotoStatus.READY)
        .exclude(file="")
        .first()
    )
    if photo is None:
        return "skipped"
    if order_restricted(photo.order):  # restricted after the retoucher queued it (DSR-1)
        return order_hold(order=photo.order, what=f"automated edit of photo {photo.pk}")
    chain = [(str(name), dict(params)) for name, params in steps]  # type: ignore[call-overload]
    with Image.open(io.BytesIO(_read(photo.file.name or ""))) as img:
        img.load()
        edited = apply_chain(img.convert("RGB"), chain)
    data = encode(edited, "JPEG", quality=92)
    result_store(
        order=photo.order,
        photo=photo,
        kind=ResultKind.AUTOMATED,
        data=data,
        width=edited.width,
        height=edited.height,
        operations=[name for name, _ in chain],
    )
    order_touch(order=photo.order)
    for name, _ in chain:
        image_stat_add(event=f"operation_{name}")
    return "ready"
