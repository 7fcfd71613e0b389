"""Passport/ID photos from a selfie (IMG-6): preview before payment, files after.

The selfie's raw upload is used once, by a worker, to make three results (a watermarked
preview, the digital file and the print sheet) and is then deleted: nothing else of the
selfie is kept (IMG-1, minimal data). Only the preview is served before payment.
"""

from __future__ import annotations

import io

from django.db import transaction
from django.utils import timezone
from PIL import Image

from images.models import Photo, PhotoStatus, Result, ResultKind
from images.operations.passport import PassportRejected, passport_make
from images.passport_specs import DOCUMENT_SPECS
from images.services.processing import photo_reject, storage_write
from images.services.restriction import order_hold, order_restricted
from images.services.stats import image_stat_add
from orders.models import ActorRole, Order, OrderStatus
from orders.services.status import order_transition

PAID_KINDS = frozenset({ResultKind.PASSPORT_DIGITAL, ResultKind.PASSPORT_SHEET})


def _size(jpeg: bytes) -> tuple[int, int]:
    """Width and height from the JPEG's header (Pillow opens lazily: nothing is decoded)."""
    with Image.open(io.BytesIO(jpeg)) as image:
        return image.size


def passport_make_results(*, photo: Photo, raw: bytes) -> str:
    order = photo.order
    spec = DOCUMENT_SPECS[order.document]
    try:
        out = passport_make(raw, spec)
    except PassportRejected as exc:
        photo_reject(photo=photo, reason=exc.message)
        Order.objects.filter(pk=order.pk).update(failure_message=exc.message[:300])
        image_stat_add(event=f"passport_rejected_{exc.code}")
        return "rejected"
    ops = [f"passport:{spec.key}"]
    outputs = (
        (ResultKind.PREVIEW, out.preview, *_size(out.preview), ops),
        (ResultKind.PASSPORT_DIGITAL, out.digital, out.width, out.height, ops),
        (ResultKind.PASSPORT_SHEET, out.sheet, *_size(out.sheet), [*ops, "print_sheet"]),
    )
    keys = {
        kind: storage_write(
            f"o/{order.storage_token}/r/{kind}-{photo.pk}-{order.revision_round}.jpg", data
        )
        for kind, data, _, _, _ in outputs
    }
    # One transaction and a handful of statements for every row; the files are under
    # deterministic keys, so a retry after a failed commit overwrites the same three.
    with transaction.atomic():
        mine = Result.objects.filter(
            order=order, photo=photo, round=order.revision_round, created_by__isnull=True
        )
        mine.filter(kind__in=list(keys)).delete()
        Result.objects.bulk_create(
            Result(
                order=order,
                photo=photo,
                kind=kind,
                round=order.revision_round,
                file=keys[kind],
                size_bytes=len(data),
                width=width,
                height=height,
                operations=names,
            )
            for kind, data, width, height, names in outputs
        )
        Photo.objects.filter(pk=photo.pk).update(status=PhotoStatus.READY, claimed_at=None)
        Order.objects.filter(pk=order.pk).update(failure_message="", last_edited_at=timezone.now())
        image_stat_add(event=f"passport_{spec.key}", size=sum(len(o[1]) for o in outputs))
        passport_deliver_if_ready(order=Order.objects.get(pk=order.pk))
    return "ready"


def passport_deliver_if_ready(*, order: Order) -> bool:
    """Paid and the files exist: deliver (automated, no human review step).

    Not while the subject's processing is restricted (DSR-1): the order waits, says why,
    and the lift of the restriction delivers it.
    """
    if order.status != OrderStatus.PAID:
        return False
    if not order.results.filter(kind__in=PAID_KINDS, ready=True).exists():
        return False
    if order_restricted(order):
        order_hold(order=order, what="delivery")
        return False
    order_transition(
        actor=None, order=order, to=OrderStatus.IN_PROGRESS, actor_role=ActorRole.SYSTEM
    )
    order_transition(actor=None, order=order, to=OrderStatus.DELIVERED, actor_role=ActorRole.SYSTEM)
    return True
