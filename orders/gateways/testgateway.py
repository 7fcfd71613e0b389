"""An offline gateway for development, demos and tests: no network, no money (ORD-2).

checkout_start sends the customer to the site's own test payment page
(orders:test_gateway_pay), whose buttons call test_event_sign() and then feed the
result to the same webhook path a real gateway uses. So the whole order flow, replay
detection included, runs without a provider account.

Anyone holding SECRET_KEY can sign these events, and they mark orders paid: settings
refuse this gateway in production unless ALLOW_TEST_GATEWAY=true.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from orders.gateways.base import (
    CheckoutStart,
    GatewayEvent,
    GatewayOutcome,
    WebhookRejected,
    checkout_args_check,
    header_get,
)

SIGNATURE_HEADER = "X-Test-Gateway-Signature"
REFERENCE_PREFIX = "test_"
# Distinct salts: a reference can never double as a valid event signature.
_SIGN_SALT = "orders.gateways.testgateway.event"
_REFERENCE_SALT = "orders.gateways.testgateway.reference"


def _signature(payload: bytes) -> str:
    return salted_hmac(_SIGN_SALT, payload, algorithm="sha256").hexdigest()


def test_event_sign(
    *,
    reference: str,
    order_ref: str,
    amount_minor: int,
    currency: str,
    outcome: GatewayOutcome,
) -> tuple[bytes, dict[str, str]]:
    """A webhook payload and its headers, as the test gateway would deliver them.

    Every call makes a new event_id, as a real gateway does per event; delivering the
    same payload twice is a replay, which the caller's event table must catch.
    """
    event = {
        "event_id": "tevt_" + secrets.token_hex(12),
        "reference": reference,
        "order_ref": order_ref,
        "amount_minor": amount_minor,
        "currency": currency.upper(),
        "outcome": GatewayOutcome(outcome).value,
    }
    payload = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    return payload, {SIGNATURE_HEADER: _signature(payload)}


# Not a test, whatever its name says: keep pytest from collecting it where imported.
test_event_sign.__test__ = False  # type: ignore[attr-defined]


class TestGateway:
    """PaymentGateway without a provider: stateless, so any number of processes agree."""

    __test__ = False
    name = "test"

    def checkout_start(
        self,
        *,
        order_ref: str,
        amount_minor: int,
        currency: str,
        description: str,
        customer_email: str | None,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutStart:
        checkout_args_check(
            amount_minor=amount_minor, currency=currency, idempotency_key=idempotency_key
        )
        # Derived from the idempotency key, like Stripe's replay of a keyed request: a
        # double-clicked "Pay" opens the same checkout, with no table to remember it.
        digest = salted_hmac(_REFERENCE_SALT, idempotency_key, algorithm="sha256").hexdigest()
        reference = REFERENCE_PREFIX + digest[:24]
        # Reversed per call, not at import: the URLconf is loaded after this module.
        url = reverse("orders:test_gateway_pay", kwargs={"reference": reference})
        return CheckoutStart(reference=reference, redirect_url=url)

    def webhook_parse(self, *, payload: bytes, headers: Mapping[str, str]) -> GatewayEvent | None:
        signature = header_get(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected("Missing test gateway signature.")
        if not constant_time_compare(signature, _signature(payload)):
            raise WebhookRejected("Bad test gateway signature.")
        return _event_from_payload(payload)

    def checkout_status(self, *, reference: str) -> GatewayEvent | None:
        # The test payment page delivers its event at once; there is nothing to poll.
        return None


def _event_from_payload(payload: bytes) -> GatewayEvent:
    try:
        data: Any = json.loads(payload)
        event = GatewayEvent(
            event_id=_str(data["event_id"]),
            reference=_str(data["reference"]),
            outcome=GatewayOutcome(data["outcome"]),
            amount_minor=_int(data["amount_minor"]),
            currency=_str(data["currency"]).upper(),
            order_ref=_str(data["order_ref"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        # Signed by us yet malformed: a bug, but still nothing to act on.
        raise WebhookRejected("Malformed test gateway event.") from exc
    return event


def _str(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a non-empty string")
    return value


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    return value
