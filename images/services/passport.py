"""Passport/ID photos from a selfie (IMG-6): preview before payment, files after.

The selfie's raw upload is used once, by a worker, to make three results (a watermarked
preview, the digital file and the print sheet) and is then deleted: nothing else of the
selfie is kept (IMG-1, minimal data). Only the preview is served before payment.
"""

from __future__ import annotations

from django.db import transaction

from images.models import Photo, PhotoStatus, ResultKind
from images.operations.passport import PassportRejected, passport_make
from images.passport_specs import DOCUMENT_SPECS
from images.services.processing import photo_reject, result_store
from images.services.stats import image_stat_add
from orders.models import ActorRole, Order, OrderStatus
from orders.services.status import order_touch, order_transition

PAID_KINDS = frozenset({ResultKind.PASSPORT_DIGITAL, ResultKind.PASSPORT_SHEET})


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
    result_store(
        order=order,
        photo=photo,
        kind=ResultKind.PREVIEW,
        data=out.preview,
        width=0,
        height=0,
        operations=ops,
    )
    result_store(
        order=order,
        photo=photo,
        kind=ResultKind.PASSPORT_DIGITAL,
        data=out.digital,
        width=out.width,
        height=out.height,
        operations=ops,
    )
    result_store(
        order=order,
        photo=photo,
        kind=ResultKind.PASSPORT_SHEET,
        data=out.sheet,
        width=0,
        height=0,
        operations=[*ops, "print_sheet"],
    )
    with transaction.atomic():
        Photo.objects.filter(pk=photo.pk).update(status=PhotoStatus.READY, claimed_at=None)
        Order.objects.filter(pk=order.pk).update(failure_message="")
        order_touch(order=order)
        passport_deliver_if_ready(order=Order.objects.get(pk=order.pk))
    return "ready"


def passport_deliver_if_ready(*, order: Order) -> bool:
    """Paid and the files exist: deliver (automated, no human review step)."""
    if order.status != OrderStatus.PAID:
        return False
    if not order.results.filter(kind__in=PAID_KINDS, ready=True).exists():
        return False
    order_transition(
        actor=None, order=order, to=OrderStatus.IN_PROGRESS, actor_role=ActorRole.SYSTEM
    )
    order_transition(actor=None, order=order, to=OrderStatus.DELIVERED, actor_role=ActorRole.SYSTEM)
    return True
