"""Restriction of processing (GDPR Art. 18, DSR-1) on the image paths.

While the customer (or the guest address) of an order is restricted, no worker edits its
photos: the work is left exactly as it was, the order says why, and it resumes when the
restriction is lifted (``orders_resume_after_restriction``, called by the lift). The
flag itself lives in the dsr app; these helpers only ask it and act on the answer.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Q

from images.models import Photo, PhotoStatus
from orders.models import Order, OrderKind, OrderStatus

logger = logging.getLogger(__name__)

# Shown to the customer on the order page (Order.failure_message): what happens and why.
HOLD_MESSAGE = (
    "Work on this order is paused because you asked us to restrict the processing of "
    "your data. It resumes as soon as the restriction is lifted."
)


def order_restricted(order: Order) -> bool:
    """Is the order's subject (the account, or the guest address) restricted right now?"""
    from dsr.selectors import processing_restricted

    return processing_restricted(user=order.customer, email=order.guest_email)


def order_hold(*, order: Order, what: str) -> str:
    """Leave the order untouched and say why (the customer sees the message)."""
    Order.objects.filter(pk=order.pk).update(failure_message=HOLD_MESSAGE)
    logger.info("order %s: %s held: processing restricted (Art. 18)", order.reference, what)
    return "restricted"


def subject_orders(*, user: Any = None, email: str = "") -> Q:
    """The orders of a subject as the restriction check sees them (account or address)."""
    cond = Q(pk__in=[])
    if user is not None and user.pk is not None:
        cond |= Q(customer_id=user.pk)
        if user.email:
            cond |= Q(customer__isnull=True, guest_email__iexact=user.email)
    if email:
        cond |= Q(guest_email__iexact=email) | Q(customer__email__iexact=email)
    return cond


def orders_resume_after_restriction(*, user: Any = None, email: str = "") -> dict[str, int]:
    """After a lift: photos held by the restriction are queued again, paid passport orders
    whose files exist are delivered, and the hold message goes. Nothing happens while
    another restriction of the same subject is still active."""
    from dsr.selectors import processing_restricted

    counts = {"photos": 0, "delivered": 0}
    if processing_restricted(user=user, email=email):
        return counts
    orders = Order.objects.filter(subject_orders(user=user, email=email))
    orders.filter(failure_message=HOLD_MESSAGE).update(failure_message="")
    held = list(
        Photo.objects.filter(
            order__in=orders, status=PhotoStatus.PROCESSING, claimed_at__isnull=True
        ).values_list("pk", flat=True)
    )
    from images import tasks

    for photo_id in held:
        transaction.on_commit(partial(tasks.photo_process.delay, photo_id))
    counts["photos"] = len(held)
    from images.services.passport import passport_deliver_if_ready

    for order in orders.filter(kind=OrderKind.PASSPORT, status=OrderStatus.PAID):
        counts["delivered"] += passport_deliver_if_ready(order=order)
    return counts
