"""Stripe Checkout as our payment gateway (ORD-2).

The customer types card details on Stripe's hosted Checkout page, never on ours; we
send an amount and get back a Checkout Session id, then learn the outcome from signed
webhooks. Nothing card-related is ever requested, returned, logged or stored, and raw
payloads are not logged either: Stripe error messages can echo what we sent (the
customer's email), so only error types, codes and parameter names are logged.

Named stripe_gateway, not stripe, so it never shadows the library.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from orders.gateways.base import (
    CheckoutStart,
    GatewayEvent,
    GatewayOutcome,
    GatewayRequestInvalid,
    GatewayUnavailable,
    WebhookRejected,
    checkout_args_check,
    header_get,
)

if TYPE_CHECKING:
    from stripe.params.checkout import SessionCreateParams

logger = logging.getLogger(__name__)

# The library logs at INFO every API error with Stripe's message, which echoes what we
# sent (the customer's email), and our root logger is at INFO. Quiet it unless LOGGING
# configures the "stripe" logger on purpose (to debug, say).
_library_logger = logging.getLogger("stripe")
if _library_logger.level == logging.NOTSET:
    _library_logger.setLevel(logging.WARNING)

SIGNATURE_HEADER = "Stripe-Signature"
# Stripe fills this placeholder in the success URL, so the return page can poll the
# session before the webhook lands.
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
# A checkout is started inside a web request, so the worst case must stay under the
# worker timeout (gunicorn: 30 s): (3 s connect + 10 s read) x 2 attempts + backoff.
# The one retry is safe: it carries the same Idempotency-Key, so Stripe replays its
# first answer instead of opening a second session.
TIMEOUT_SECONDS = (3.0, 10.0)
MAX_NETWORK_RETRIES = 1

_UNAVAILABLE = "The payment provider cannot be reached. Please try again in a moment."

# Event types whose outcome does not depend on the session's payment_status.
_FIXED_OUTCOMES = {
    "checkout.session.async_payment_succeeded": GatewayOutcome.SUCCEEDED,
    "checkout.session.async_payment_failed": GatewayOutcome.FAILED,
    "checkout.session.expired": GatewayOutcome.EXPIRED,
}
_COMPLETED = "checkout.session.completed"
# "no_payment_required" is a fully discounted total: nothing is owed. The caller still
# compares amount_minor with the order, so a zero total cannot settle a priced order.
_PAID_STATUSES = {"paid", "no_payment_required"}


class StripeGateway:
    """PaymentGateway on Stripe Checkout. Reads settings when built; build one per use."""

    name = "stripe"

    def __init__(
        self,
        *,
        secret_key: str | None = None,
        webhook_secret: str | None = None,
        api_base: str | None = None,
        webhook_tolerance: int | None = None,
        max_network_retries: int = MAX_NETWORK_RETRIES,
        timeout: float | tuple[float, float] = TIMEOUT_SECONDS,
    ) -> None:
        self._secret_key = settings.STRIPE_SECRET_KEY if secret_key is None else secret_key
        self._webhook_secret = (
            settings.STRIPE_WEBHOOK_SECRET if webhook_secret is None else webhook_secret
        )
        self._api_base = settings.STRIPE_API_BASE if api_base is None else api_base
        self._tolerance = (
            settings.STRIPE_WEBHOOK_TOLERANCE if webhook_tolerance is None else webhook_tolerance
        )
        self._max_network_retries = max_network_retries
        self._timeout = timeout

    # --- Outgoing: start and poll a checkout -------------------------------------------

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
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        # Stripe's wire format is lower case; events report it upper case.
                        "currency": currency.lower(),
                        "unit_amount": amount_minor,
                        "product_data": {"name": description},
                    },
                }
            ],
            "client_reference_id": order_ref,
            # Both: client_reference_id is Checkout's own field for it; metadata is what
            # staff can search for in Stripe's dashboard.
            "metadata": {"order_ref": order_ref},
            "success_url": _success_url(success_url),
            "cancel_url": cancel_url,
        }
        if customer_email:
            params["customer_email"] = customer_email
        client = self._client()
        try:
            session = client.v1.checkout.sessions.create(
                params, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            # Not chained: Stripe's message can echo the customer's email, and a logged
            # traceback would print it. _error_map logs what is safe (request id, code).
            raise _error_map(exc, action="checkout start") from None
        if not session.id or not session.url:
            logger.error("Stripe returned a Checkout Session without id or url")
            raise GatewayUnavailable(_UNAVAILABLE)
        return CheckoutStart(reference=session.id, redirect_url=session.url)

    def checkout_status(self, *, reference: str) -> GatewayEvent | None:
        client = self._client()
        try:
            session = client.v1.checkout.sessions.retrieve(reference)
        except stripe.StripeError as exc:
            raise _error_map(exc, action="checkout status") from None
        data = session.to_dict()
        outcome = _status_outcome(data)
        try:
            # No event exists for a poll: a stable id per (session, outcome) lets the
            # caller's event table treat repeated polls with one answer as one event.
            return _session_event(
                event_id=f"poll_{reference}_{outcome.value}", session=data, outcome=outcome
            )
        except WebhookRejected as exc:
            logger.error("Stripe returned a malformed Checkout Session")
            raise GatewayUnavailable(_UNAVAILABLE) from exc

    def _client(self) -> stripe.StripeClient:
        if not self._secret_key:
            raise ImproperlyConfigured("PAYMENT_GATEWAY=stripe needs STRIPE_SECRET_KEY")
        return stripe.StripeClient(
            self._secret_key,
            base_addresses={"api": self._api_base} if self._api_base else None,
            max_network_retries=self._max_network_retries,
            http_client=stripe.RequestsClient(timeout=self._timeout),
        )

    # --- Incoming: webhooks ---------------------------------------------------------------

    def webhook_parse(self, *, payload: bytes, headers: Mapping[str, str]) -> GatewayEvent | None:
        if not self._webhook_secret:
            # A 500, not a 400: Stripe keeps retrying for days, so no event is lost
            # while the missing secret gets fixed.
            raise ImproperlyConfigured("PAYMENT_GATEWAY=stripe needs STRIPE_WEBHOOK_SECRET")
        signature = header_get(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected("Missing Stripe-Signature header.")
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self._webhook_secret, tolerance=self._tolerance
            )
        except stripe.SignatureVerificationError as exc:
            # The library's message says which check failed (signature or age) and
            # never includes the payload; its exception object does, so drop that.
            raise WebhookRejected(f"Stripe signature refused: {exc.user_message}") from None
        except (ValueError, TypeError, AttributeError, KeyError):
            # Signed but not a JSON object, or not a snapshot event (UnicodeDecodeError
            # is a ValueError too).
            raise WebhookRejected("Malformed Stripe event.") from None
        return _event_read(event.to_dict())


def _success_url(url: str) -> str:
    if SESSION_ID_PLACEHOLDER in url:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}session_id={SESSION_ID_PLACEHOLDER}"


def _event_read(event: dict[str, Any]) -> GatewayEvent | None:
    event_type = event.get("type")
    event_id = event.get("id")
    if not isinstance(event_type, str) or not isinstance(event_id, str) or not event_id:
        raise WebhookRejected("Malformed Stripe event.")
    session = (event.get("data") or {}).get("object")
    if not isinstance(session, dict):
        raise WebhookRejected("Malformed Stripe event.")
    if event_type == _COMPLETED:
        outcome = (
            GatewayOutcome.SUCCEEDED
            if session.get("payment_status") in _PAID_STATUSES
            # "unpaid": a delayed method (bank debit); async_payment_* follows.
            else GatewayOutcome.PENDING
        )
    elif event_type in _FIXED_OUTCOMES:
        outcome = _FIXED_OUTCOMES[event_type]
    else:
        return None
    return _session_event(event_id=event_id, session=session, outcome=outcome)


def _status_outcome(session: dict[str, Any]) -> GatewayOutcome:
    status = session.get("status")
    if status == "expired":
        return GatewayOutcome.EXPIRED
    if status == "complete" and session.get("payment_status") in _PAID_STATUSES:
        return GatewayOutcome.SUCCEEDED
    # Open, or complete but awaiting a delayed payment. A failed delayed payment looks
    # the same here; only its webhook tells, so a poll never reports FAILED.
    return GatewayOutcome.PENDING


def _session_event(
    *, event_id: str, session: dict[str, Any], outcome: GatewayOutcome
) -> GatewayEvent | None:
    """The GatewayEvent for a Checkout Session; None when the session is not one of ours."""
    order_ref = session.get("client_reference_id") or (session.get("metadata") or {}).get(
        "order_ref"
    )
    if not order_ref:
        # Another integration on the same Stripe account (a payment link, say): not ours
        # to act on, and answering 200 stops Stripe from retrying it.
        return None
    reference = session.get("id")
    amount = session.get("amount_total")
    currency = session.get("currency")
    if (
        not isinstance(reference, str)
        or not reference
        or isinstance(amount, bool)
        or not isinstance(amount, int)
        or not isinstance(currency, str)
        or len(currency) != 3
        or not isinstance(order_ref, str)
    ):
        raise WebhookRejected("Malformed Stripe Checkout Session.")
    return GatewayEvent(
        event_id=event_id,
        reference=reference,
        outcome=outcome,
        amount_minor=amount,
        currency=currency.upper(),
        order_ref=order_ref,
    )


def _error_map(exc: stripe.StripeError, *, action: str) -> Exception:
    """The exception the caller gets for a Stripe error; logs only non-personal fields."""
    status = exc.http_status
    logger.warning(
        "Stripe %s failed: %s status=%s code=%s param=%s request_id=%s",
        action,
        type(exc).__name__,
        status,
        exc.code,
        getattr(exc, "param", None),
        exc.request_id,
    )
    if isinstance(exc, stripe.APIConnectionError | stripe.APIError | stripe.RateLimitError) or (
        status is not None and status >= 500
    ):
        return GatewayUnavailable(_UNAVAILABLE)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        # Our key is wrong or revoked: an operator must act, the customer can only wait.
        logger.error("Stripe refused our API key: check STRIPE_SECRET_KEY")
        return GatewayUnavailable(_UNAVAILABLE)
    detail = exc.code or type(exc).__name__
    param = getattr(exc, "param", None)
    return GatewayRequestInvalid(
        f"The payment provider refused the request ({detail}"
        + (f", parameter {param}" if param else "")
        + ")."
    )
