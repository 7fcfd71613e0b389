"""Results made by the assigned retoucher: uploaded files and automated edits of originals."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import IO

from django.core.files.storage import default_storage
from django.db import transaction

from accounts.models import AuditAction, User
from accounts.services import audit_log_write
from common.imaging import ImageRejected, sanitize_image
from common.storage import storage_delete_everywhere
from images.models import Photo, PhotoStatus, Result, ResultKind, ScanVerdict
from images.operations.retouch import OPERATIONS
from images.services.intake import UploadRefused, quarantine, upload_limits, uploads_screen
from images.services.processing import storage_write
from images.services.restriction import order_restricted
from orders.models import Order, OrderStatus
from orders.services.status import TransitionRefused, order_touch

WORK_STATUSES = (OrderStatus.IN_PROGRESS,)


def _require_working(actor: User, order: Order) -> None:
    if order.retoucher_id != actor.pk:
        raise TransitionRefused("Only the retoucher assigned to this order can add results.")
    if order.status not in WORK_STATUSES:
        raise TransitionRefused("Start work on the order first (it must be in progress).")
    if order_restricted(order):
        raise TransitionRefused(
            "The customer has restricted the processing of their data: no work on this "
            "order until the restriction is lifted."
        )


def results_upload(
    *, actor: User, order: Order, files: Sequence[tuple[IO[bytes], str | None]]
) -> list[Result]:
    """The retoucher's finished files: checked and scanned like uploads, cleaned by a worker."""
    _require_working(actor, order)
    if not files:
        raise UploadRefused("Choose at least one file.")
    screened = uploads_screen(files=[(s, n, "") for s, n in files], on_malware=lambda _: None)
    if any(verdict == ScanVerdict.PENDING for _, verdict in screened):
        # Results have no "pending scan" state to wait in: fail closed, nothing stored.
        raise UploadRefused("The malware scanner is not answering; try again in a few minutes.")
    with quarantine(order) as save, transaction.atomic():
        results = [
            Result.objects.create(
                order=order,
                kind=ResultKind.RETOUCHED,
                round=order.revision_round,
                file=save(upload.data),
                size_bytes=len(upload.data),
                width=upload.width,
                height=upload.height,
                created_by=actor,
                ready=False,
            )
            for upload, _ in screened
        ]
        order_touch(order=order)
        audit_log_write(
            actor=actor,
            action=AuditAction.RESULT_UPLOADED,
            subject=order.customer,
            detail={"order": order.reference, "count": len(results)},
        )
        ids = [r.pk for r in results]
        transaction.on_commit(lambda: _enqueue_finalize(ids))
    return results


def _enqueue_finalize(ids: list[int]) -> None:
    from images import tasks

    for result_id in ids:
        tasks.result_finalize.delay(result_id)


def result_finalize(*, result_id: int) -> str:
    """Re-encode a retoucher's upload without metadata; the raw upload is then deleted."""
    result = Result.objects.select_related("order").filter(pk=result_id, ready=False).first()
    if result is None:
        return "skipped"
    raw_name = result.file.name or ""
    with default_storage.open(raw_name, "rb") as fh:
        raw = fh.read()
    try:
        clean = sanitize_image(io.BytesIO(raw), upload_limits(), quality=95)
    except ImageRejected as exc:
        storage_delete_everywhere(raw_name)
        Result.objects.filter(pk=result.pk).delete()
        return f"rejected: {exc.message}"
    key = f"o/{result.order.storage_token}/r/retouched-{result.pk}.{clean.extension}"
    name = storage_write(key, clean.content)
    Result.objects.filter(pk=result.pk).update(
        file=name,
        ready=True,
        size_bytes=len(clean.content),
        width=clean.width,
        height=clean.height,
        content_type=clean.content_type,
    )
    if raw_name != name:
        storage_delete_everywhere(raw_name)
    return "ready"


def result_automate(
    *,
    actor: User,
    order: Order,
    photo: Photo,
    steps: Sequence[tuple[str, Mapping[str, float]]],
) -> None:
    """Queue an automated edit of one original (IMG-6: run by a worker, not the request)."""
    _require_working(actor, order)
    if photo.order_id != order.pk or photo.status != PhotoStatus.READY or not photo.file:
        raise TransitionRefused("That photo is not available for editing.")
    unknown = [name for name, _ in steps if name not in OPERATIONS]
    if not steps or unknown:
        raise TransitionRefused(f"Choose operations from the list (unknown: {unknown}).")
    from images import tasks

    payload = [[name, dict(params)] for name, params in steps]
    photo_id = photo.pk
    transaction.on_commit(lambda: tasks.photo_automate.delay(photo_id, payload))
