"""Payment gateways (ORD-2): the customer pays on the gateway's page, never on ours.

The orders app talks to a gateway only through the PaymentGateway interface in
base.py, so the offline test gateway and Stripe are interchangeable.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from orders.gateways.base import (
    CheckoutStart,
    GatewayEvent,
    GatewayOutcome,
    GatewayRequestInvalid,
    GatewayUnavailable,
    PaymentGateway,
    WebhookRejected,
)

__all__ = [
    "CheckoutStart",
    "GatewayEvent",
    "GatewayOutcome",
    "GatewayRequestInvalid",
    "GatewayUnavailable",
    "PaymentGateway",
    "WebhookRejected",
    "gateway_get",
]

GATEWAY_NAMES = ("test", "stripe")


def gateway_get(name: str | None = None) -> PaymentGateway:
    """The gateway called name, or settings.PAYMENT_GATEWAY.

    A new instance per call, built from the settings of the moment (cheap: no network
    until it is used), so nothing is shared between requests or stale in tests.
    """
    chosen = name or settings.PAYMENT_GATEWAY
    # Imported here so that choosing the test gateway never needs the stripe library.
    if chosen == "test":
        from orders.gateways.testgateway import TestGateway

        return TestGateway()
    if chosen == "stripe":
        from orders.gateways.stripe_gateway import StripeGateway

        return StripeGateway()
    raise ImproperlyConfigured(f"Unknown payment gateway {chosen!r}: use one of {GATEWAY_NAMES}")
