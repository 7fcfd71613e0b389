"""What every payment gateway offers the orders app (ORD-2).

The customer pays on the gateway's own page; we only start a checkout and later learn
its outcome from a signed webhook (or a poll). Nothing here carries card data, and a
GatewayEvent holds exactly what we may store: the gateway's reference, the amount,
the currency and the outcome.

Independent of orders.models on purpose, so the adapters can be tested (and swapped)
without the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

# ISO 4217 codes; the gateways accept either case and report upper case.
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
# Stripe's own limit for Idempotency-Key; the test gateway follows it too.
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class GatewayOutcome(StrEnum):
    """Where a payment stands, as the gateway reports it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    PENDING = "pending"


@dataclass(frozen=True)
class CheckoutStart:
    """A checkout the gateway has opened: send the customer to redirect_url."""

    # The gateway's id for this payment (Stripe: the Checkout Session id "cs_...").
    reference: str
    redirect_url: str


@dataclass(frozen=True)
class GatewayEvent:
    """One verified report about a payment; everything in it may be stored (ORD-2)."""

    # Unique per delivery-worthy event, so the caller can drop replays by it.
    event_id: str
    reference: str
    outcome: GatewayOutcome
    amount_minor: int
    # Always upper-case ISO 4217 ("EUR"), whatever case the gateway uses on the wire.
    currency: str
    # Our order's public reference, as passed to checkout_start.
    order_ref: str


class WebhookRejected(Exception):
    """A webhook we must not act on: bad or missing signature, too old, malformed.

    The message is safe to log and to return to the sender: it never echoes the payload.
    """


class GatewayUnavailable(Exception):
    """The gateway could not be reached or failed on its side (network fault, 5xx).

    Nothing was charged that we do not know about: the caller tells the customer to
    try again, and a retry with the same idempotency key cannot create a second payment.
    """


class GatewayRequestInvalid(ValueError):
    """The gateway refused our request as invalid (a bug or a bad amount/currency).

    Retrying will not help. The message is safe to show staff: no personal data.
    """


class PaymentGateway(Protocol):
    """The adapter interface; see orders.gateways.gateway_get for how one is chosen."""

    name: str

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
        """Open a hosted checkout for one order; the same idempotency_key gives the same one."""
        ...

    def webhook_parse(self, *, payload: bytes, headers: Mapping[str, str]) -> GatewayEvent | None:
        """Verify and read a webhook; None for event types we do not act on.

        Raises WebhookRejected for anything unsigned, too old or malformed.
        """
        ...

    def checkout_status(self, *, reference: str) -> GatewayEvent | None:
        """Ask the gateway where a checkout stands; None when it cannot tell.

        For a customer who returns from the success URL before the webhook arrives.
        """
        ...


def checkout_args_check(*, amount_minor: int, currency: str, idempotency_key: str) -> None:
    """Refuse what no gateway should be asked, before any network call."""
    # bool is an int subclass; True as an amount is a bug, not one cent.
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise GatewayRequestInvalid("The amount must be a positive whole number of minor units.")
    if not _CURRENCY_RE.fullmatch(currency):
        raise GatewayRequestInvalid("The currency must be a three-letter ISO 4217 code.")
    if not idempotency_key or len(idempotency_key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise GatewayRequestInvalid("The idempotency key must be 1-255 characters.")


def header_get(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name: request.headers is, a plain dict is not."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
