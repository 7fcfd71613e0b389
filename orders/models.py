"""Orders, payments (the gateway's reference only, ORD-2) and invoices (kept for tax law, ORD-4)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from common.models import TimeStampedModel

REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud on the phone


def new_reference() -> str:
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(10))


def new_storage_token() -> str:
    # Prefix of every stored file of the order: random, so keys reveal nothing.
    return secrets.token_hex(16)


class OrderKind(models.TextChoices):
    RETOUCH = "retouch", "Retouching"
    PASSPORT = "passport", "Passport/ID photo"


class OrderStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    PAID = "paid", "Paid"
    IN_PROGRESS = "in_progress", "In progress"
    READY_FOR_REVIEW = "ready_for_review", "Ready for review"
    REVISION_REQUESTED = "revision_requested", "Revision requested"
    DELIVERED = "delivered", "Delivered"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATUSES = frozenset(
    {
        OrderStatus.DRAFT,
        OrderStatus.SUBMITTED,
        OrderStatus.PAID,
        OrderStatus.IN_PROGRESS,
        OrderStatus.READY_FOR_REVIEW,
        OrderStatus.REVISION_REQUESTED,
    }
)


class Order(TimeStampedModel):
    reference = models.CharField(max_length=12, unique=True, default=new_reference)
    kind = models.CharField(max_length=10, choices=OrderKind.choices)
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.DRAFT, db_index=True
    )
    # A guest's order has no customer; buying it needs only guest_email (ACC-4).
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
    )
    guest_email = models.EmailField(blank=True)
    instructions = models.TextField(blank=True, max_length=5000)
    document = models.CharField(max_length=40, blank=True)  # passport spec key
    amount_minor = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="EUR")
    retoucher = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_orders",
        limit_choices_to={"groups__name": "Retoucher", "is_active": True},
    )
    storage_token = models.CharField(max_length=32, default=new_storage_token, editable=False)
    revision_round = models.PositiveSmallIntegerField(default=0)
    # The clock of automatic image deletion (IMG-4): any upload, result or status change.
    last_edited_at = models.DateTimeField(default=timezone.now, db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # An automated step that could not be done, in words the customer can act on.
    failure_message = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"])]
        permissions = [
            ("view_all_orders", "Can see every order (never its images)"),
            ("assign_retoucher", "Can assign a retoucher to an order"),
            ("work_on_order", "Can work on the orders assigned to them"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(customer__isnull=False) | Q(kind="passport"),
                name="order_guest_only_passport",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reference}"

    @property
    def is_guest(self) -> bool:
        return self.customer_id is None

    @property
    def contact_email(self) -> str:
        return self.customer.email if self.customer is not None else self.guest_email

    @property
    def amount_display(self) -> str:
        return f"{self.amount_minor / 100:.2f} {self.currency}"


class ActorRole(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    STAFF = "staff", "Staff"
    SYSTEM = "system", "System"


class OrderEvent(models.Model):
    """The order's history as the customer sees it (status changes and revision comments)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    from_status = models.CharField(max_length=20, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=OrderStatus.choices)
    actor_role = models.CharField(max_length=10, choices=ActorRole.choices)
    comment = models.TextField(blank=True, max_length=2000)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_from_status_display()} → {self.get_to_status_display()}"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


class Payment(TimeStampedModel):
    """The gateway's reference, amount, currency and status: never card data (ORD-2)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    gateway = models.CharField(max_length=20)
    reference = models.CharField(max_length=255)
    amount_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gateway", "reference"], name="payment_unique_ref")
        ]


class WebhookEvent(models.Model):
    """Gateway event ids already handled: a replayed webhook changes nothing the second time."""

    gateway = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gateway", "event_id"], name="webhook_event_once")
        ]

    def __str__(self) -> str:
        return f"{self.gateway}:{self.event_id}"


class InvoiceSequence(models.Model):
    """One row per series; locked while a number is taken, so numbers have no gaps."""

    series = models.CharField(max_length=20, unique=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.series} (last {self.last_number})"


class Invoice(models.Model):
    """Kept for the legal period (ORD-4); on erasure reduced to what tax law needs."""

    series = models.CharField(max_length=20)
    number = models.PositiveIntegerField()
    issued_at = models.DateTimeField(default=timezone.now, db_index=True)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="invoices"
    )
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invoices",
    )
    buyer_name = models.CharField(max_length=200, blank=True)
    buyer_email = models.EmailField(blank=True)
    buyer_address = models.TextField(blank=True)
    buyer_country = models.CharField(max_length=2, blank=True)
    buyer_vat_id = models.CharField(max_length=32, blank=True)
    description = models.CharField(max_length=200)
    total_minor = models.PositiveIntegerField()
    tax_minor = models.PositiveIntegerField(default=0)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    currency = models.CharField(max_length=3)
    payment_reference = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["series", "number"], name="invoice_number_unique")
        ]

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        return f"{self.series}-{self.number:06d}"

    @property
    def net_minor(self) -> int:
        return self.total_minor - self.tax_minor

    @property
    def total_display(self) -> str:
        return f"{self.total_minor / 100:.2f} {self.currency}"

    @property
    def tax_display(self) -> str:
        return f"{self.tax_minor / 100:.2f} {self.currency}"
