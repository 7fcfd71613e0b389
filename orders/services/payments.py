"""Payments through a gateway (ORD-2) and invoices with gapless numbers (ORD-4)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.models import AuditAction, User
from accounts.services import audit_log_write
from orders.gateways import gateway_get
from orders.gateways.base import GatewayEvent, GatewayOutcome
from orders.models import (
    ActorRole,
    Invoice,
    InvoiceSequence,
    Order,
    OrderKind,
    OrderStatus,
    Payment,
    PaymentStatus,
    WebhookEvent,
)
from orders.services.status import TransitionRefused, order_transition

OUTCOME_STATUS = {
    GatewayOutcome.SUCCEEDED: PaymentStatus.SUCCEEDED,
    GatewayOutcome.FAILED: PaymentStatus.FAILED,
    GatewayOutcome.EXPIRED: PaymentStatus.EXPIRED,
    GatewayOutcome.PENDING: PaymentStatus.PENDING,
}


def payment_start(*, actor: User | None, order: Order) -> str:
    """Open a checkout at the gateway; return where to send the customer.

    Only the gateway's reference, amount, currency and status are stored (ORD-2).
    GatewayUnavailable propagates: the view says "try again" and nothing is lost.
    """
    if order.status != OrderStatus.SUBMITTED:
        raise TransitionRefused("This order is not waiting for payment.")
    gateway = gateway_get()
    order_url = settings.SITE_URL + reverse("orders:detail", args=[order.reference])
    start = gateway.checkout_start(
        order_ref=order.reference,
        amount_minor=order.amount_minor,
        currency=order.currency,
        description=f"{order.get_kind_display()} order {order.reference}",
        customer_email=order.contact_email or None,
        success_url=settings.SITE_URL + reverse("orders:paid", args=[order.reference]),
        cancel_url=order_url,
        # One checkout per order and amount: a double click reuses the first session.
        idempotency_key=f"{order.reference}-{order.amount_minor}-{order.currency}",
    )
    Payment.objects.get_or_create(
        gateway=gateway.name,
        reference=start.reference,
        defaults={"order": order, "amount_minor": order.amount_minor, "currency": order.currency},
    )
    return start.redirect_url


def payment_webhook_receive(
    *, gateway_name: str, payload: bytes, headers: Mapping[str, str]
) -> str:
    """Verify and apply one gateway event; returns what happened (for the log and tests).

    WebhookRejected propagates (the view answers 400). A replayed event id changes nothing.
    """
    gateway = gateway_get(gateway_name)
    event = gateway.webhook_parse(payload=payload, headers=headers)
    if event is None:
        return "ignored"
    return payment_event_apply(gateway_name=gateway.name, event=event)


@transaction.atomic
def payment_event_apply(*, gateway_name: str, event: GatewayEvent) -> str:
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(gateway=gateway_name, event_id=event.event_id)
    except IntegrityError:
        return "replayed"
    payment = (
        Payment.objects.select_for_update()
        .select_related("order")
        .filter(gateway=gateway_name, reference=event.reference)
        .first()
    )
    if payment is None:
        return "unknown payment"
    new_status = OUTCOME_STATUS[event.outcome]
    if payment.status == PaymentStatus.SUCCEEDED or payment.status == new_status:
        return "unchanged"
    order = payment.order
    if new_status == PaymentStatus.SUCCEEDED and (
        event.amount_minor != payment.amount_minor
        or event.currency.upper() != payment.currency.upper()
    ):
        # Never mark paid on an amount we did not ask for; staff look at it.
        audit_log_write(
            actor=None,
            action=AuditAction.PAYMENT,
            subject=order.customer,
            detail={"order": order.reference, "error": "amount mismatch", "ref": event.reference},
        )
        return "amount mismatch"
    payment.status = new_status
    payment.save(update_fields=["status", "updated_at"])
    audit_log_write(
        actor=None,
        action=AuditAction.PAYMENT,
        subject=order.customer,
        detail={"order": order.reference, "gateway": gateway_name, "status": new_status},
    )
    if new_status == PaymentStatus.SUCCEEDED:
        _order_paid(order, payment)
    return new_status


def _order_paid(order: Order, payment: Payment) -> None:
    order_transition(actor=None, order=order, to=OrderStatus.PAID, actor_role=ActorRole.SYSTEM)
    invoice_issue(order=order, payment=payment)
    if order.kind == OrderKind.PASSPORT:
        from images.services.passport import passport_deliver_if_ready

        passport_deliver_if_ready(order=order)


def _tax_of(total_minor: int) -> int:
    rate = Decimal(settings.INVOICE_TAX_RATE)
    if not rate:
        return 0
    tax = Decimal(total_minor) * rate / (100 + rate)
    return int(tax.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _buyer_address(user: User | None) -> str:
    if user is None:
        return ""
    parts = [user.street_address, f"{user.postal_code} {user.city}".strip(), user.region]
    return "\n".join(p for p in parts if p)


@transaction.atomic
def invoice_issue(*, order: Order, payment: Payment) -> Invoice:
    """Issue the order's invoice with the next number of the series (no gaps, no repeats)."""
    existing = order.invoices.first()
    if existing is not None:
        return existing
    # Locked (or just created) inside this transaction: concurrent issuers queue here.
    seq, _ = InvoiceSequence.objects.select_for_update().get_or_create(
        series=settings.INVOICE_SERIES
    )
    seq.last_number += 1
    seq.save(update_fields=["last_number"])
    customer = order.customer
    invoice = Invoice.objects.create(
        series=seq.series,
        number=seq.last_number,
        order=order,
        customer=customer,
        buyer_name=(customer.full_name if customer else "") or "",
        buyer_email=order.contact_email,
        buyer_address=_buyer_address(customer),
        buyer_country=str(customer.country) if customer and customer.country else "",
        buyer_vat_id=(customer.vat_id if customer else "") or "",
        description=f"{order.get_kind_display()} order {order.reference}",
        total_minor=payment.amount_minor,
        tax_minor=_tax_of(payment.amount_minor),
        tax_rate=Decimal(settings.INVOICE_TAX_RATE),
        currency=payment.currency,
        payment_reference=payment.reference,
    )
    audit_log_write(
        actor=None,
        action=AuditAction.INVOICE_ISSUED,
        subject=customer,
        detail={"order": order.reference, "invoice": invoice.display_number},
    )
    return invoice
