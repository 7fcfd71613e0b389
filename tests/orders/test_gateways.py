"""Payment gateway adapters (ORD-2): card data never touches our servers.

Stripe is exercised against a local fake of its API (tests/orders/fake_stripe.py), and
its webhooks are signed here by hand, exactly as Stripe documents it, so the adapter's
verification is tested independently of the library's own signing helper.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from orders.gateways import (
    CheckoutStart,
    GatewayEvent,
    GatewayOutcome,
    GatewayRequestInvalid,
    GatewayUnavailable,
    WebhookRejected,
    gateway_get,
)
from orders.gateways import testgateway as tg
from orders.gateways.stripe_gateway import StripeGateway
from tests.orders.fake_stripe import API_KEY, FakeStripe, fake_stripe_running

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"
ORDER_REF = "ORD-7K3QX9"
CHECKOUT: dict[str, Any] = {
    "order_ref": ORDER_REF,
    "amount_minor": 1600,
    "currency": "EUR",
    "description": "Order ORD-7K3QX9: 2 retouched photos",
    "customer_email": "casey@example.com",
    "success_url": "https://photos.example.org/orders/ORD-7K3QX9/paid/",
    "cancel_url": "https://photos.example.org/orders/ORD-7K3QX9/",
    "idempotency_key": "checkout-ORD-7K3QX9-1",
}
# Anything that would mean card data passed through us.
CARD_WORDS = ("card", "cvc", "cvv", "exp_month", "exp_year", "number", "payment_method_data")


@pytest.fixture
def fake_stripe(settings) -> Iterator[FakeStripe]:
    with fake_stripe_running() as fake:
        settings.PAYMENT_GATEWAY = "stripe"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_SECRET_KEY = API_KEY
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.STRIPE_WEBHOOK_TOLERANCE = 300
        yield fake


@pytest.fixture
def stripe_webhooks(settings) -> StripeGateway:
    """A Stripe gateway for webhooks only: no API key, no network."""
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_WEBHOOK_TOLERANCE = 300
    return StripeGateway()


def _started(**overrides: Any) -> CheckoutStart:
    return gateway_get("stripe").checkout_start(**{**CHECKOUT, **overrides})


# --- Stripe: starting a checkout ----------------------------------------------------------


def test_stripe_checkout_start_sends_the_order_and_no_card_data_ORD_2(fake_stripe) -> None:
    """ORD-2: exactly the amount, currency, order and return URLs leave our server."""
    started = _started()

    (sent,) = fake_stripe.session_creates()
    assert sent.form == {
        "mode": "payment",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "eur",
        "line_items[0][price_data][unit_amount]": "1600",
        "line_items[0][price_data][product_data][name]": "Order ORD-7K3QX9: 2 retouched photos",
        "client_reference_id": ORDER_REF,
        "metadata[order_ref]": ORDER_REF,
        "customer_email": "casey@example.com",
        "success_url": CHECKOUT["success_url"] + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": CHECKOUT["cancel_url"],
    }
    assert not [key for key in sent.form if any(word in key for word in CARD_WORDS)]
    assert sent.headers["Idempotency-Key"] == CHECKOUT["idempotency_key"]
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    session_id = started.reference
    assert session_id.startswith("cs_test_")
    assert started == CheckoutStart(
        reference=session_id, redirect_url=f"https://checkout.stripe.test/c/pay/{session_id}"
    )


def test_stripe_checkout_start_without_email_and_with_a_query_in_the_success_url_ORD_2(
    fake_stripe,
) -> None:
    _started(customer_email=None, success_url="https://photos.example.org/paid/?o=1")

    (sent,) = fake_stripe.session_creates()
    assert "customer_email" not in sent.form
    assert sent.form["success_url"] == (
        "https://photos.example.org/paid/?o=1&session_id={CHECKOUT_SESSION_ID}"
    )


def test_stripe_checkout_start_repeated_key_opens_one_session_ORD_2(fake_stripe) -> None:
    """A double-clicked Pay button reuses the idempotency key: one session, one charge."""
    first = _started()
    again = _started()

    assert again == first
    assert len(fake_stripe.sessions) == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount_minor": 0},
        {"amount_minor": -100},
        {"amount_minor": True},
        {"currency": "EURO"},
        {"currency": "E1R"},
        {"idempotency_key": ""},
        {"idempotency_key": "k" * 256},
    ],
)
def test_stripe_checkout_start_refuses_bad_arguments_before_calling_ORD_2(
    fake_stripe, overrides
) -> None:
    with pytest.raises(GatewayRequestInvalid):
        _started(**overrides)
    assert fake_stripe.requests == []


def test_stripe_checkout_start_needs_a_secret_key_ORD_2(fake_stripe, settings) -> None:
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="STRIPE_SECRET_KEY"):
        _started()


# --- Stripe: provider faults --------------------------------------------------------------


@pytest.mark.parametrize("failure", ["500", "close", "429", "401"])
def test_stripe_provider_down_is_gateway_unavailable_ORD_2(fake_stripe, failure) -> None:
    """Every attempt fails: the customer is told to try again, nothing is half-made."""
    fake_stripe.failures = [failure] * 5
    with pytest.raises(GatewayUnavailable) as caught:
        _started()
    assert "try again" in str(caught.value)


def test_stripe_provider_unreachable_is_gateway_unavailable_ORD_2(settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more: the connection is refused.
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{port}"
    settings.STRIPE_SECRET_KEY = API_KEY
    with pytest.raises(GatewayUnavailable):
        _started()


def test_stripe_retry_after_a_500_reuses_the_idempotency_key_ORD_2(fake_stripe) -> None:
    """The library's one retry is safe only because it carries the same key."""
    fake_stripe.failures = ["500"]

    started = _started()

    creates = fake_stripe.session_creates()
    assert len(creates) == 2
    assert {r.headers["Idempotency-Key"] for r in creates} == {CHECKOUT["idempotency_key"]}
    assert list(fake_stripe.sessions) == [started.reference]


def test_stripe_refused_request_is_invalid_and_logs_no_personal_data_ORD_2(
    fake_stripe, caplog
) -> None:
    """Stripe's error message echoes the email we sent: neither logged nor passed on."""
    fake_stripe.failures = ["400"]
    # INFO is the site's root level (settings.LOGGING), where the library logs API errors.
    with caplog.at_level(logging.INFO), pytest.raises(GatewayRequestInvalid) as caught:
        _started()

    assert isinstance(caught.value, ValueError)
    assert "customer_email" in str(caught.value)
    assert "casey@example.com" not in str(caught.value)
    # Not chained either: a logged traceback would print the library's message.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    lines = [r.getMessage() for r in caplog.records]
    assert [line for line in lines if "email_invalid" in line]
    assert not [line for line in lines if "casey@example.com" in line]


# --- Stripe: polling a checkout -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "payment_status", "outcome"),
    [
        ("open", "unpaid", GatewayOutcome.PENDING),
        ("complete", "unpaid", GatewayOutcome.PENDING),
        ("complete", "paid", GatewayOutcome.SUCCEEDED),
        ("expired", "unpaid", GatewayOutcome.EXPIRED),
    ],
)
def test_stripe_checkout_status_reports_the_session_ORD_2(
    fake_stripe, status, payment_status, outcome
) -> None:
    started = _started()
    fake_stripe.session_update(started.reference, status=status, payment_status=payment_status)
    gateway = gateway_get("stripe")

    event = gateway.checkout_status(reference=started.reference)

    assert event == GatewayEvent(
        event_id=f"poll_{started.reference}_{outcome.value}",
        reference=started.reference,
        outcome=outcome,
        amount_minor=1600,
        currency="EUR",
        order_ref=ORDER_REF,
    )
    # The same answer twice is one event to the caller's replay table.
    assert gateway.checkout_status(reference=started.reference) == event


def test_stripe_checkout_status_of_an_unknown_session_is_invalid_ORD_2(fake_stripe) -> None:
    with pytest.raises(GatewayRequestInvalid):
        gateway_get("stripe").checkout_status(reference="cs_test_nope")


def test_stripe_checkout_status_when_provider_down_ORD_2(fake_stripe) -> None:
    started = _started()
    fake_stripe.failures = ["close"] * 5
    with pytest.raises(GatewayUnavailable):
        gateway_get("stripe").checkout_status(reference=started.reference)


# --- Stripe: webhooks -------------------------------------------------------------------------


def _session(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "cs_test_a1b2c3",
        "object": "checkout.session",
        "amount_total": 1600,
        "currency": "eur",
        "client_reference_id": ORDER_REF,
        "metadata": {"order_ref": ORDER_REF},
        "mode": "payment",
        "status": "complete",
        "payment_status": "paid",
        "livemode": False,
        **overrides,
    }


def _event(event_type: str = "checkout.session.completed", **session: Any) -> bytes:
    event = {
        "id": "evt_test_123",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": _session(**session)},
    }
    return json.dumps(event).encode()


def _stripe_signed(
    payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """The Stripe-Signature header, computed as Stripe documents it (not by the library)."""
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + payload
    v1 = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={v1}"}


def test_stripe_webhook_signed_completed_payment_gives_the_event_ORD_2(stripe_webhooks) -> None:
    payload = _event()

    event = stripe_webhooks.webhook_parse(payload=payload, headers=_stripe_signed(payload))

    assert event == GatewayEvent(
        event_id="evt_test_123",
        reference="cs_test_a1b2c3",
        outcome=GatewayOutcome.SUCCEEDED,
        amount_minor=1600,
        currency="EUR",
        order_ref=ORDER_REF,
    )


@pytest.mark.parametrize(
    ("event_type", "payment_status", "outcome"),
    [
        ("checkout.session.completed", "paid", GatewayOutcome.SUCCEEDED),
        ("checkout.session.completed", "no_payment_required", GatewayOutcome.SUCCEEDED),
        ("checkout.session.completed", "unpaid", GatewayOutcome.PENDING),
        ("checkout.session.async_payment_succeeded", "paid", GatewayOutcome.SUCCEEDED),
        ("checkout.session.async_payment_failed", "unpaid", GatewayOutcome.FAILED),
        ("checkout.session.expired", "unpaid", GatewayOutcome.EXPIRED),
    ],
)
def test_stripe_webhook_event_types_map_to_outcomes_ORD_2(
    stripe_webhooks, event_type, payment_status, outcome
) -> None:
    payload = _event(event_type, payment_status=payment_status)

    event = stripe_webhooks.webhook_parse(payload=payload, headers=_stripe_signed(payload))

    assert event is not None
    assert event.outcome == outcome


@pytest.mark.parametrize(
    "event_type",
    ["payment_intent.succeeded", "charge.succeeded", "customer.created", "invoice.paid"],
)
def test_stripe_webhook_other_event_types_are_ignored_ORD_2(stripe_webhooks, event_type) -> None:
    payload = _event(event_type)
    assert stripe_webhooks.webhook_parse(payload=payload, headers=_stripe_signed(payload)) is None


def test_stripe_webhook_for_a_session_that_is_not_ours_is_ignored_ORD_2(stripe_webhooks) -> None:
    """A payment link on the same Stripe account carries no order reference of ours."""
    payload = _event(client_reference_id=None, metadata={})
    assert stripe_webhooks.webhook_parse(payload=payload, headers=_stripe_signed(payload)) is None


def test_stripe_webhook_order_ref_from_metadata_and_any_header_case_ORD_2(
    stripe_webhooks,
) -> None:
    payload = _event(client_reference_id=None)
    headers = {"stripe-signature": _stripe_signed(payload)["Stripe-Signature"]}

    event = stripe_webhooks.webhook_parse(payload=payload, headers=headers)

    assert event is not None
    assert event.order_ref == ORDER_REF


def _tampered(payload: bytes) -> tuple[bytes, dict[str, str]]:
    return payload.replace(b"1600", b"1"), _stripe_signed(payload)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda p: (p, _stripe_signed(p, secret="whsec_other")), id="wrong-secret"),
        pytest.param(_tampered, id="tampered-body"),
        pytest.param(
            lambda p: (p, _stripe_signed(p, timestamp=int(time.time()) - 301)), id="too-old"
        ),
        pytest.param(lambda p: (p, {}), id="missing-header"),
        pytest.param(lambda p: (p, {"Stripe-Signature": ""}), id="empty-header"),
        pytest.param(lambda p: (p, {"Stripe-Signature": "t=abc,v1=00"}), id="garbled-header"),
        pytest.param(
            lambda p: (p, {"Stripe-Signature": _stripe_signed(p)["Stripe-Signature"][:-2]}),
            id="cut-signature",
        ),
        pytest.param(lambda p: (b"{not json", _stripe_signed(b"{not json")), id="signed-not-json"),
        pytest.param(lambda p: (b"[1, 2]", _stripe_signed(b"[1, 2]")), id="signed-not-object"),
        pytest.param(lambda p: (b"\xff\xfe", _stripe_signed(b"\xff\xfe")), id="signed-not-utf8"),
    ],
)
def test_stripe_webhook_rejects_unsigned_old_or_malformed_ORD_2(stripe_webhooks, forge) -> None:
    payload, headers = forge(_event())
    with pytest.raises(WebhookRejected) as caught:
        stripe_webhooks.webhook_parse(payload=payload, headers=headers)
    # Safe to log and to answer with: the payload is never echoed.
    assert ORDER_REF not in str(caught.value)


@pytest.mark.parametrize(
    "session",
    [{"amount_total": None}, {"amount_total": "1600"}, {"currency": None}, {"id": None}],
)
def test_stripe_webhook_rejects_a_session_without_amount_or_id_ORD_2(
    stripe_webhooks, session
) -> None:
    payload = _event(**session)
    with pytest.raises(WebhookRejected):
        stripe_webhooks.webhook_parse(payload=payload, headers=_stripe_signed(payload))


def test_stripe_webhook_within_tolerance_is_accepted_ORD_2(stripe_webhooks) -> None:
    payload = _event()
    headers = _stripe_signed(payload, timestamp=int(time.time()) - 250)
    assert stripe_webhooks.webhook_parse(payload=payload, headers=headers) is not None


def test_stripe_webhook_needs_the_webhook_secret_ORD_2(settings) -> None:
    """Not a 400 (Stripe would give up): a server error, so Stripe keeps retrying."""
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = _event()
    with pytest.raises(ImproperlyConfigured, match="STRIPE_WEBHOOK_SECRET"):
        StripeGateway().webhook_parse(payload=payload, headers=_stripe_signed(payload))


# --- The offline test gateway ---------------------------------------------------------------


@pytest.fixture
def offline_gateway(settings) -> tg.TestGateway:
    settings.ROOT_URLCONF = "tests.orders.gateway_urls"
    return tg.TestGateway()


def _test_signed(**overrides: Any) -> tuple[bytes, dict[str, str]]:
    args: dict[str, Any] = {
        "reference": "test_abc",
        "order_ref": ORDER_REF,
        "amount_minor": 1600,
        "currency": "eur",
        "outcome": GatewayOutcome.SUCCEEDED,
        **overrides,
    }
    return tg.test_event_sign(**args)


def test_test_gateway_checkout_start_points_to_our_own_payment_page_ORD_2(offline_gateway) -> None:
    started = offline_gateway.checkout_start(**CHECKOUT)

    assert started.reference.startswith("test_")
    assert started.redirect_url == f"/pay/test/{started.reference}/"
    # Same key, same checkout; another key, another one.
    assert offline_gateway.checkout_start(**CHECKOUT) == started
    other = offline_gateway.checkout_start(**{**CHECKOUT, "idempotency_key": "checkout-2"})
    assert other.reference != started.reference


def test_test_gateway_checkout_start_refuses_bad_arguments_ORD_2(offline_gateway) -> None:
    with pytest.raises(GatewayRequestInvalid):
        offline_gateway.checkout_start(**{**CHECKOUT, "amount_minor": 0})


def test_test_gateway_signed_event_round_trip_ORD_2(offline_gateway) -> None:
    payload, headers = _test_signed(outcome=GatewayOutcome.FAILED)

    event = offline_gateway.webhook_parse(payload=payload, headers=headers)

    assert event is not None
    assert event.event_id.startswith("tevt_")
    assert event == GatewayEvent(
        event_id=event.event_id,
        reference="test_abc",
        outcome=GatewayOutcome.FAILED,
        amount_minor=1600,
        currency="EUR",
        order_ref=ORDER_REF,
    )


def test_test_gateway_event_ids_are_unique_so_replays_show_ORD_2(offline_gateway) -> None:
    ids = set()
    for _ in range(20):
        payload, headers = _test_signed()
        event = offline_gateway.webhook_parse(payload=payload, headers=headers)
        assert event is not None
        ids.add(event.event_id)
    assert len(ids) == 20


def test_test_gateway_rejects_tampered_or_unsigned_events_ORD_2(offline_gateway, settings) -> None:
    payload, headers = _test_signed()
    tampered = payload.replace(b"1600", b"1")
    with pytest.raises(WebhookRejected):
        offline_gateway.webhook_parse(payload=tampered, headers=headers)
    with pytest.raises(WebhookRejected):
        offline_gateway.webhook_parse(payload=payload, headers={})
    # Another site's key signs nothing here.
    settings.SECRET_KEY = "another-site-" + "x" * 50
    with pytest.raises(WebhookRejected):
        offline_gateway.webhook_parse(payload=payload, headers=headers)


def test_test_gateway_rejects_signed_but_malformed_events_ORD_2(offline_gateway) -> None:
    for payload in (b"{not json", b"[]", json.dumps({"event_id": "tevt_1"}).encode()):
        headers = {tg.SIGNATURE_HEADER: tg._signature(payload)}
        with pytest.raises(WebhookRejected):
            offline_gateway.webhook_parse(payload=payload, headers=headers)


def test_test_gateway_has_nothing_to_poll_ORD_2(offline_gateway) -> None:
    assert offline_gateway.checkout_status(reference="test_abc") is None


# --- Choosing a gateway, and the settings that guard it ---------------------------------------


def test_gateway_get_follows_the_setting_ORD_2(settings) -> None:
    settings.PAYMENT_GATEWAY = "test"
    assert gateway_get().name == "test"
    settings.PAYMENT_GATEWAY = "stripe"
    assert gateway_get().name == "stripe"
    assert gateway_get("test").name == "test"
    with pytest.raises(ImproperlyConfigured):
        gateway_get("paypal")


ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "APP_ENV": "production",
    "SECRET_KEY": "x" * 60,
    "ALLOWED_HOSTS": "example.org",
    "DATABASE_URL": "postgres://u@127.0.0.1/db",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def _settings_probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    probe = "from django.conf import settings as s; print(s.PAYMENT_GATEWAY)"
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRIPE_", "PAYMENT_", "ALLOW_TEST_"))
        and k not in {"APP_ENV", *PRODUCTION_ENV}
    }
    return subprocess.run(
        [sys.executable, "-c", probe],
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "stripe"),
        ({"PAYMENT_GATEWAY": "test", "ALLOW_TEST_GATEWAY": "true"}, "test"),
        ({"PAYMENT_GATEWAY": "test"}, None),
        ({"PAYMENT_GATEWAY": "test", "ALLOW_TEST_GATEWAY": "false"}, None),
        ({"PAYMENT_GATEWAY": "paypal"}, None),
        ({"STRIPE_WEBHOOK_TOLERANCE": "0"}, None),
    ],
)
def test_production_refuses_the_test_gateway_unless_allowed_ORD_2(env, expected) -> None:
    """The test gateway marks orders paid without money: not in production by accident."""
    result = _settings_probe({**PRODUCTION_ENV, **env})
    if expected is None:
        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == expected


def test_development_defaults_to_the_test_gateway_ORD_2() -> None:
    result = _settings_probe({"APP_ENV": "development"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "test"
