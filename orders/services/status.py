"""The order status machine: explicit transitions, each audited and announced (ORD-3)."""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditAction, User
from accounts.services import audit_log_write, notification_create
from orders.models import ActorRole, Order, OrderEvent, OrderKind, OrderStatus

S = OrderStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.SUBMITTED: frozenset({S.PAID, S.CANCELLED, S.DRAFT}),
    S.PAID: frozenset({S.IN_PROGRESS, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.READY_FOR_REVIEW, S.DELIVERED}),
    S.READY_FOR_REVIEW: frozenset({S.REVISION_REQUESTED, S.DELIVERED, S.IN_PROGRESS}),
    S.REVISION_REQUESTED: frozenset({S.IN_PROGRESS}),
    S.DELIVERED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
}
# Passport photos are automated: no human review step between work and delivery.
KIND_ONLY: dict[tuple[str, str], str] = {
    (S.IN_PROGRESS, S.DELIVERED): OrderKind.PASSPORT,
    (S.READY_FOR_REVIEW, S.REVISION_REQUESTED): OrderKind.RETOUCH,
}
TIMESTAMPS: dict[str, str] = {
    S.SUBMITTED: "submitted_at",
    S.PAID: "paid_at",
    S.DELIVERED: "delivered_at",
    S.CLOSED: "closed_at",
    S.CANCELLED: "cancelled_at",
}
# Announced to the customer by email and in-site notification (ORD-3).
ANNOUNCE: dict[str, str] = {
    S.SUBMITTED: "Order {ref} received",
    S.PAID: "Payment received for order {ref}",
    S.IN_PROGRESS: "Order {ref} is being worked on",
    S.READY_FOR_REVIEW: "Order {ref} is ready for your review",
    S.REVISION_REQUESTED: "Revision requested for order {ref}",
    S.DELIVERED: "Order {ref} is delivered: your files are ready",
    S.CLOSED: "Order {ref} is closed",
    S.CANCELLED: "Order {ref} was cancelled",
}


class TransitionRefused(Exception):
    """The order cannot go to that status now; the message is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def transition_allowed(order: Order, to: str) -> bool:
    if to not in TRANSITIONS[order.status]:
        return False
    kind = KIND_ONLY.get((order.status, to))
    return kind is None or kind == order.kind


def _refuse_if_restricted(order: Order) -> None:
    """GDPR Art. 18 (DSR-1): no work starts on a restricted subject's order."""
    from dsr.selectors import processing_restricted

    if processing_restricted(user=order.customer, email=order.guest_email):
        raise TransitionRefused(
            f"Order {order.reference}: the customer has restricted the processing of their "
            "data, so no work can start until the restriction is lifted."
        )


def order_touch(*, order: Order) -> None:
    """Restart the deletion clock (IMG-4): something about the order's images changed."""
    order.last_edited_at = timezone.now()
    Order.objects.filter(pk=order.pk).update(last_edited_at=order.last_edited_at)


@transaction.atomic
def order_transition(
    *,
    actor: User | None,
    order: Order,
    to: OrderStatus,
    actor_role: ActorRole,
    comment: str = "",
    ip_address: str | None = None,
) -> Order:
    """Move *order* to *to*, or raise TransitionRefused. Locks the row: no lost updates."""
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if not transition_allowed(locked, to):
        raise TransitionRefused(
            f"Order {locked.reference} is {locked.get_status_display().lower()}; "
            f"it cannot become {OrderStatus(to).label.lower()}."
        )
    if to == S.IN_PROGRESS:
        _refuse_if_restricted(locked)
    now = timezone.now()
    previous = locked.status
    locked.status = to
    locked.last_edited_at = now
    fields = ["status", "last_edited_at", "updated_at"]
    if to in TIMESTAMPS:
        setattr(locked, TIMESTAMPS[to], now)
        fields.append(TIMESTAMPS[to])
    if to == S.REVISION_REQUESTED:
        locked.revision_round += 1
        fields.append("revision_round")
    locked.save(update_fields=fields)
    OrderEvent.objects.create(
        order=locked, from_status=previous, to_status=to, actor_role=actor_role, comment=comment
    )
    audit_log_write(
        actor=actor,
        action=AuditAction.ORDER_STATUS,
        subject=locked.customer,
        ip_address=ip_address,
        detail={"order": locked.reference, "from": previous, "to": to},
    )
    _announce(locked, to)
    order.__dict__.update(locked.__dict__)
    return locked


def _announce(order: Order, to: str) -> None:
    title = ANNOUNCE.get(to)
    if title is None:
        return
    title = title.format(ref=order.reference)
    if order.customer is not None:
        notification_create(
            user=order.customer,
            title=title,
            link=reverse("orders:detail", args=[order.reference]),
        )
    if order.contact_email:
        from orders import tasks

        order_id, status = order.pk, to
        transaction.on_commit(lambda: tasks.order_status_email.delay(order_id, status))
