"""Reads for orders, always scoped to who is asking: anything else is a 404."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from images.models import Photo, Result
from orders.models import Order, OrderKind, OrderStatus

GUEST_SESSION_KEY = "guest_orders"


def guest_orders(session: Any) -> list[str]:
    """References of the guest orders this browser session made or opened by link."""
    value = session.get(GUEST_SESSION_KEY, [])
    return [str(v) for v in value] if isinstance(value, list) else []


def guest_orders_remember(session: Any, reference: str) -> None:
    refs = guest_orders(session)
    if reference not in refs:
        session[GUEST_SESSION_KEY] = [*refs[-19:], reference]


def order_list_for_customer(*, user: Any) -> QuerySet[Order]:
    return Order.objects.filter(customer=user).order_by("-created_at", "-id")


def order_get_for_viewer(*, user: Any, reference: str, guest_refs: Collection[str] = ()) -> Order:
    """The customer's own order, or a guest order of this session; 404 otherwise.

    Retouchers open orders in the admin, not here.
    """
    qs = Order.objects.select_related("customer").prefetch_related(
        Prefetch("photos", queryset=Photo.objects.order_by("position", "id")),
        Prefetch("results", queryset=Result.objects.order_by("round", "id")),
        "events",
        "invoices",
    )
    if user.is_authenticated:
        order = qs.filter(reference=reference, customer=user).first()
        if order is not None:
            return order
    if reference in guest_refs:
        order = qs.filter(reference=reference, customer__isnull=True).first()
        if order is not None:
            return order
    raise Http404("No such order.")


def orders_for_retoucher(*, user: Any) -> QuerySet[Order]:
    return Order.objects.filter(retoucher=user)


def passport_order_get_for_viewer(
    *, user: Any, reference: str, guest_refs: Collection[str] = ()
) -> Order:
    """Like ``order_get_for_viewer``, for passport orders only (another kind is a 404 too)."""
    order = order_get_for_viewer(user=user, reference=reference, guest_refs=guest_refs)
    if order.kind != OrderKind.PASSPORT:
        raise Http404("No such passport order.")
    return order


def order_customer_actions(order: Order) -> list[str]:
    """What the order page's buttons and the API offer the customer now.

    A hint; each action's service still decides when it is called.
    """
    status = order.status
    actions = []
    if status == OrderStatus.DRAFT:
        if order.kind == OrderKind.RETOUCH:
            actions.append("add_photos")
        actions.append("submit")
    if status == OrderStatus.SUBMITTED:
        actions.append("pay")
    if status in (OrderStatus.DRAFT, OrderStatus.SUBMITTED):
        actions.append("cancel")
    if status == OrderStatus.READY_FOR_REVIEW:
        actions += ["accept", "revision"]
    return actions
