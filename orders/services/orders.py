"""Creating orders and the customer's and staff's actions on them."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from accounts.models import AuditAction, User
from accounts.roles import RETOUCHER
from accounts.services import audit_log_write, notification_create
from images.passport_specs import DOCUMENT_SPECS
from orders.models import ActorRole, Order, OrderKind, OrderStatus
from orders.services.status import TransitionRefused, order_transition


def _require_verified(actor: User) -> None:
    if not actor.email_verified_at:
        raise TransitionRefused("Please verify your email address before ordering.")


@transaction.atomic
def order_create_retouch(*, actor: User, instructions: str) -> Order:
    _require_verified(actor)
    return Order.objects.create(
        kind=OrderKind.RETOUCH,
        customer=actor,
        instructions=instructions.strip(),
        currency=settings.ORDER_CURRENCY,
    )


@transaction.atomic
def order_create_passport(*, actor: User | None, document: str) -> Order:
    """A passport order; *actor* None is a guest, who gives no personal data (ACC-4)."""
    if document not in DOCUMENT_SPECS:
        raise TransitionRefused("Please choose one of the listed documents.")
    if actor is not None:
        _require_verified(actor)
    return Order.objects.create(
        kind=OrderKind.PASSPORT,
        customer=actor,
        document=document,
        amount_minor=settings.PASSPORT_PRICE_MINOR,
        currency=settings.ORDER_CURRENCY,
    )


def order_discard_empty(*, order: Order) -> None:
    """Drop a draft that never got a file (its upload was refused): nothing to keep."""
    Order.objects.filter(
        pk=order.pk, status=OrderStatus.DRAFT, photos__isnull=True, results__isnull=True
    ).delete()


def _price(order: Order) -> int:
    if order.kind == OrderKind.PASSPORT:
        return int(settings.PASSPORT_PRICE_MINOR)
    usable = order.photos.exclude(status="rejected").count()
    return usable * int(settings.RETOUCH_PRICE_PER_PHOTO_MINOR)


@transaction.atomic
def order_submit(
    *,
    actor: User | None,
    order: Order,
    guest_email: str = "",
    ip_address: str | None = None,
) -> Order:
    """Fix the price and ask for payment. A guest gives only an email address (ACC-4)."""
    if order.kind == OrderKind.RETOUCH and not order.photos.exclude(status="rejected").exists():
        raise TransitionRefused("Add at least one photo before submitting the order.")
    if order.kind == OrderKind.PASSPORT and not order.results.filter(kind="preview").exists():
        raise TransitionRefused("The preview is not ready yet.")
    fields = ["amount_minor", "currency", "updated_at"]
    if order.is_guest:
        if not guest_email:
            raise TransitionRefused("Please give the email address for your receipt and files.")
        order.guest_email = guest_email.strip().lower()
        fields.append("guest_email")
    order.amount_minor = _price(order)
    order.currency = settings.ORDER_CURRENCY
    order.save(update_fields=fields)
    return order_transition(
        actor=actor,
        order=order,
        to=OrderStatus.SUBMITTED,
        actor_role=ActorRole.CUSTOMER,
        ip_address=ip_address,
    )


def order_cancel(*, actor: User | None, order: Order, ip_address: str | None = None) -> Order:
    if order.status not in (OrderStatus.DRAFT, OrderStatus.SUBMITTED):
        raise TransitionRefused("A paid order can be cancelled only by our support team.")
    return order_transition(
        actor=actor,
        order=order,
        to=OrderStatus.CANCELLED,
        actor_role=ActorRole.CUSTOMER,
        ip_address=ip_address,
    )


def order_request_revision(
    *, actor: User, order: Order, comment: str, ip_address: str | None = None
) -> Order:
    comment = comment.strip()
    if not comment:
        raise TransitionRefused("Please tell the retoucher what to change.")
    return order_transition(
        actor=actor,
        order=order,
        to=OrderStatus.REVISION_REQUESTED,
        actor_role=ActorRole.CUSTOMER,
        comment=comment[:2000],
        ip_address=ip_address,
    )


def order_accept(*, actor: User, order: Order, ip_address: str | None = None) -> Order:
    return order_transition(
        actor=actor,
        order=order,
        to=OrderStatus.DELIVERED,
        actor_role=ActorRole.CUSTOMER,
        ip_address=ip_address,
    )


# --- Staff -------------------------------------------------------------------------------------
def is_retoucher(user: User) -> bool:
    return user.is_active and user.is_staff and user.groups.filter(name=RETOUCHER).exists()


@transaction.atomic
def order_assign_retoucher(*, actor: User, order: Order, retoucher: User) -> Order:
    if order.kind != OrderKind.RETOUCH:
        raise TransitionRefused("Only retouching orders have a retoucher.")
    if not is_retoucher(retoucher):
        raise TransitionRefused(f"{retoucher.email} is not an active retoucher.")
    previous = order.retoucher.email if order.retoucher else ""
    order.retoucher = retoucher
    order.save(update_fields=["retoucher", "updated_at"])
    audit_log_write(
        actor=actor,
        action=AuditAction.ORDER_ASSIGNED,
        subject=order.customer,
        detail={"order": order.reference, "retoucher": retoucher.email, "previous": previous},
    )
    notification_create(
        user=retoucher,
        title=f"Order {order.reference} was assigned to you",
        link=f"/admin/orders/order/{order.pk}/change/",
    )
    return order


def _require_assigned(actor: User, order: Order) -> None:
    if order.retoucher_id != actor.pk:
        raise TransitionRefused("Only the retoucher assigned to this order can do that.")


def order_start_work(*, actor: User, order: Order) -> Order:
    _require_assigned(actor, order)
    return order_transition(
        actor=actor, order=order, to=OrderStatus.IN_PROGRESS, actor_role=ActorRole.STAFF
    )


def order_mark_ready(*, actor: User, order: Order) -> Order:
    _require_assigned(actor, order)
    if not order.results.filter(round=order.revision_round, created_by__isnull=False).exists():
        raise TransitionRefused("Upload at least one result for this round first.")
    return order_transition(
        actor=actor, order=order, to=OrderStatus.READY_FOR_REVIEW, actor_role=ActorRole.STAFF
    )


def order_close(*, actor: User | None, order: Order) -> Order:
    return order_transition(
        actor=actor,
        order=order,
        to=OrderStatus.CLOSED,
        actor_role=ActorRole.STAFF if actor else ActorRole.SYSTEM,
    )
