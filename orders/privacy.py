"""What the orders app holds about people, and why (registry declarations, ORD-2, ORD-4)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta


def _register() -> None:
    from django.conf import settings
    from django.db.models import Q

    from dsr.registry import (
        Anonymise,
        Category,
        KeepForLegalDuty,
        PersonalData,
        Retention,
        registry,
    )
    from orders.models import Invoice, Order, OrderEvent, Payment

    def legal_years() -> timedelta:
        return timedelta(days=365 * settings.INVOICE_RETENTION_YEARS + 3)  # leap days

    def kept_until(clock: str) -> Callable[[object], object]:
        return lambda row: getattr(row, clock) + legal_years()

    registry.register(
        PersonalData(
            model=Order,
            subject="customer",
            subject_email="guest_email",
            purpose="orders",
            fields={
                "instructions": Category.CONTENT,
                "guest_email": Category.CONTACT,
                "document": Category.PREFERENCES,
                "amount_minor": Category.PAYMENT_REFERENCE,
                "failure_message": Category.CONTENT,
            },
            export=(
                "reference",
                "kind",
                "status",
                "created_at",
                "instructions",
                "document",
                "amount_minor",
                "currency",
                "submitted_at",
                "paid_at",
                "delivered_at",
            ),
            erasure=Anonymise({"instructions": "", "guest_email": "", "failure_message": ""}),
            retention=Retention(
                clock="last_edited_at",
                after="the last change",
                period=lambda: timedelta(hours=settings.ORIGINALS_RETENTION_HOURS),
                filter=Q(
                    customer__isnull=True,
                    paid_at__isnull=True,
                    photos__isnull=True,
                    results__isnull=True,
                    payments__isnull=True,
                ),
                description="guest orders never bought, once their files are gone",
            ),
            description="Orders: what was asked, the price and the progress.",
        )
    )
    registry.register(
        PersonalData(
            model=OrderEvent,
            subject="order__customer",
            subject_email="order__guest_email",
            purpose="orders",
            fields={"comment": Category.CONTENT},
            export=("created_at", "from_status", "to_status", "comment"),
            erasure=Anonymise({"comment": ""}),
            description="Order history, with the customer's revision comments.",
        )
    )
    registry.register(
        PersonalData(
            model=Payment,
            subject="order__customer",
            subject_email="order__guest_email",
            purpose="payments",
            fields={
                "reference": Category.PAYMENT_REFERENCE,
                "amount_minor": Category.PAYMENT_REFERENCE,
                "status": Category.PAYMENT_REFERENCE,
            },
            export=("created_at", "gateway", "reference", "amount_minor", "currency", "status"),
            erasure=KeepForLegalDuty(
                duty="bookkeeping (payments behind invoices)",
                until=kept_until("created_at"),
                keep_fields=("gateway", "reference", "amount_minor", "currency", "status"),
            ),
            retention=(
                Retention(
                    name="legal",
                    clock="created_at",
                    after="the payment",
                    period=legal_years,
                    filter=Q(status="succeeded"),
                    description="successful payments",
                ),
                Retention(
                    name="unpaid",
                    clock="created_at",
                    after="the checkout started",
                    period=lambda: timedelta(days=30),
                    filter=~Q(status="succeeded"),
                    description="checkouts never paid",
                ),
            ),
            description="The gateway's payment reference, amount, currency and status; "
            "never card data (ORD-2).",
        )
    )
    registry.register(
        PersonalData(
            model=Invoice,
            subject="customer",
            subject_email="buyer_email",
            purpose="tax",
            fields={
                "buyer_name": Category.IDENTITY,
                "buyer_email": Category.CONTACT,
                "buyer_address": Category.CONTACT,
                "buyer_country": Category.IDENTITY,
                "buyer_vat_id": Category.IDENTITY,
                "total_minor": Category.PAYMENT_REFERENCE,
                "payment_reference": Category.PAYMENT_REFERENCE,
            },
            export=(
                "series",
                "number",
                "issued_at",
                "buyer_name",
                "buyer_email",
                "buyer_address",
                "buyer_country",
                "buyer_vat_id",
                "description",
                "total_minor",
                "tax_minor",
                "currency",
            ),
            # ORD-4: what tax law needs stays for the legal period, the rest goes.
            erasure=KeepForLegalDuty(
                duty="tax law (invoices)",
                until=kept_until("issued_at"),
                keep_fields=(
                    "series",
                    "number",
                    "issued_at",
                    "buyer_name",
                    "buyer_address",
                    "buyer_country",
                    "buyer_vat_id",
                    "description",
                    "total_minor",
                    "tax_minor",
                    "tax_rate",
                    "currency",
                ),
                reduce={"buyer_email": "", "payment_reference": ""},
            ),
            retention=Retention(clock="issued_at", after="issue", period=legal_years),
            description="Invoices, kept for the period tax law sets.",
        )
    )
    registry.exempt("orders.WebhookEvent", "Only gateway event ids, to ignore replays.")
    registry.exempt("orders.InvoiceSequence", "Only the last invoice number of a series.")


_register()
