"""Orders over the API: the same fields the order pages show, and the same form limits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from images.models import Photo, PhotoStatus, Result, ResultKind
from images.selectors import results_for_customer
from orders.forms import RetouchOrderForm, RevisionForm
from orders.models import ActorRole, Invoice, Order, OrderEvent, OrderKind, OrderStatus
from orders.selectors import order_customer_actions

ACTIONS = ("add_photos", "submit", "pay", "cancel", "accept", "revision")


def _max_length(form: type[Any], field: str) -> int:
    # The web form is the one place the limit is written; the API reads it from there.
    return int(form.base_fields[field].max_length)


LIST_FIELDS = (
    "reference",
    "kind",
    "status",
    "created_at",
    "updated_at",
    "amount_minor",
    "currency",
    "document",
)


def _iso(value: datetime) -> str:
    """DRF's DateTimeField output (current time zone, "Z" for UTC) without its per-call cost."""
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class OrderListItemSerializer(serializers.ModelSerializer[Order]):
    """One order in the list. Reads the ``LIST_FIELDS`` row dict of ``orders_list_rows``.

    The list is the API's busiest call: the declared fields describe it (schema, detail
    serializer), while ``to_representation`` writes the same JSON straight from the row,
    about ten times cheaper than DRF's field-by-field path (see the api_orders bench).
    """

    kind = serializers.ChoiceField(choices=OrderKind.choices, read_only=True)
    status = serializers.ChoiceField(choices=OrderStatus.choices, read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = Order
        fields = [*LIST_FIELDS[:3], "status_label", *LIST_FIELDS[3:]]
        read_only_fields = fields

    def to_representation(self, instance: Any) -> dict[str, Any]:
        if not isinstance(instance, dict):
            return dict(super().to_representation(instance))
        return {
            "reference": instance["reference"],
            "kind": instance["kind"],
            "status": instance["status"],
            "status_label": OrderStatus(instance["status"]).label,
            "created_at": _iso(instance["created_at"]),
            "updated_at": _iso(instance["updated_at"]),
            "amount_minor": instance["amount_minor"],
            "currency": instance["currency"],
            "document": instance["document"],
        }


class PhotoSerializer(serializers.ModelSerializer[Photo]):
    name = serializers.SerializerMethodField(help_text="As the order page names it.")
    status = serializers.ChoiceField(choices=PhotoStatus.choices, read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    reason = serializers.CharField(
        source="reject_reason", read_only=True, help_text="Why it was rejected ('' otherwise)."
    )

    class Meta:
        model = Photo
        fields = [
            "id",
            "position",
            "name",
            "status",
            "status_label",
            "reason",
            "instructions",
            "width",
            "height",
            "created_at",
        ]
        read_only_fields = fields

    def get_name(self, photo: Photo) -> str:
        return f"Photo {photo.position + 1}"


class ResultSerializer(serializers.ModelSerializer[Result]):
    kind = serializers.ChoiceField(choices=ResultKind.choices, read_only=True)
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = Result
        fields = [
            "id",
            "kind",
            "kind_label",
            "round",
            "filename",
            "content_type",
            "width",
            "height",
            "size_bytes",
            "created_at",
        ]
        read_only_fields = fields


class EventSerializer(serializers.ModelSerializer[OrderEvent]):
    from_status = serializers.CharField(
        read_only=True, help_text="A status as in `to_status`; '' for the first event."
    )
    to_status = serializers.ChoiceField(choices=OrderStatus.choices, read_only=True)
    to_status_label = serializers.CharField(source="get_to_status_display", read_only=True)
    actor_role = serializers.ChoiceField(choices=ActorRole.choices, read_only=True)

    class Meta:
        model = OrderEvent
        fields = [
            "created_at",
            "from_status",
            "to_status",
            "to_status_label",
            "actor_role",
            "comment",
        ]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer[Invoice]):
    number = serializers.CharField(source="display_number", read_only=True)

    class Meta:
        model = Invoice
        fields = ["number", "issued_at", "total_minor", "tax_minor", "currency"]
        read_only_fields = fields


class OrderDetailSerializer(OrderListItemSerializer):
    """An order from ``order_get_for_viewer`` (photos, results, events, invoices prefetched)."""

    # Counted from the prefetched photos: no query of its own.
    photo_count = serializers.IntegerField(
        source="photos.count", read_only=True, help_text="Photos uploaded (rejected included)."
    )
    photos = PhotoSerializer(many=True, read_only=True, source="photos.all")
    results = serializers.SerializerMethodField(
        help_text="Only the results the customer may open now; links: GET .../results/."
    )
    events = EventSerializer(many=True, read_only=True, source="events.all")
    invoices = InvoiceSerializer(many=True, read_only=True, source="invoices.all")
    actions = serializers.SerializerMethodField(
        help_text="What the order page offers now: " + ", ".join(ACTIONS) + "."
    )

    class Meta(OrderListItemSerializer.Meta):
        fields = [
            *OrderListItemSerializer.Meta.fields,
            "photo_count",
            "instructions",
            "revision_round",
            "failure_message",
            "submitted_at",
            "paid_at",
            "delivered_at",
            "cancelled_at",
            "photos",
            "results",
            "events",
            "invoices",
            "actions",
        ]
        read_only_fields = fields

    @extend_schema_field(ResultSerializer(many=True))
    def get_results(self, order: Order) -> list[dict[str, Any]]:
        data = ResultSerializer(results_for_customer(order=order), many=True).data
        return list(data)

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=ACTIONS)))
    def get_actions(self, order: Order) -> list[str]:
        return order_customer_actions(order)


class RetouchCreateSerializer(serializers.Serializer[Any]):
    instructions = serializers.CharField(max_length=_max_length(RetouchOrderForm, "instructions"))


class RevisionSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(max_length=_max_length(RevisionForm, "comment"))


class PaymentStartSerializer(serializers.Serializer[Any]):
    payment_url = serializers.URLField(
        read_only=True, help_text="The payment page: send the customer there (a browser)."
    )
