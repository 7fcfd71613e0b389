"""Signed links that let a guest (no account) open their own order (ACC-4)."""

from __future__ import annotations

from django.conf import settings
from django.core import signing

from orders.models import Order

SALT = "orders.guest-access"


def guest_order_token(order: Order) -> str:
    # Bound to the order's storage token too: a reference alone never opens an order.
    return signing.dumps({"r": order.reference, "s": order.storage_token[:8]}, salt=SALT)


def guest_order_from_token(token: str) -> tuple[str, str] | None:
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.GUEST_ORDER_LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    return str(data.get("r", "")), str(data.get("s", ""))
