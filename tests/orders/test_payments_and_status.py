"""Stripe webhooks through the HTTP endpoint, the status machine's refusals, passport failures."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from orders.models import Order, OrderKind, OrderStatus, Payment
from orders.services import TransitionRefused, order_transition
from orders.services.status import TRANSITIONS, transition_allowed
from tests.conftest import login_client
from tests.orders.fake_stripe import API_KEY, fake_stripe_running
from tests.photos import no_face_jpeg, selfie_jpeg

WEBHOOK_SECRET = "whsec_test_secret"


def stripe_signed(event: dict, secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    """Sign like Stripe: HMAC-SHA256 over "<timestamp>.<payload>" (Stripe-Signature v1)."""
    payload = json.dumps(event).encode()
    ts = int(time.time())
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, {"Stripe-Signature": f"t={ts},v1={mac}"}


def completed_event(session_id: str, order_ref: str, amount: int, event_id: str) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "client_reference_id": order_ref,
                "metadata": {"order_ref": order_ref},
                "amount_total": amount,
                "currency": "eur",
                "payment_status": "paid",
            }
        },
    }


@pytest.fixture
def stripe_settings(settings):
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    return settings


def submitted_passport_order(customer) -> Order:
    order = Order.objects.create(
        kind=OrderKind.PASSPORT, customer=customer, document="us_passport", amount_minor=700
    )
    order_transition(actor=customer, order=order, to=OrderStatus.SUBMITTED, actor_role="customer")
    return order


@pytest.mark.django_db(transaction=True)
def test_stripe_checkout_and_signed_webhook_mark_the_order_paid_once_ORD_2(
    customer, stripe_settings
) -> None:
    order = submitted_passport_order(customer)
    with fake_stripe_running() as fake:
        stripe_settings.STRIPE_API_BASE = fake.url
        stripe_settings.STRIPE_SECRET_KEY = API_KEY
        response = login_client(customer).post(reverse("orders:pay", args=[order.reference]))
    assert response.status_code == 302 and "checkout.stripe.test" in response["Location"]
    payment = Payment.objects.get(order=order)
    assert payment.gateway == "stripe" and payment.reference.startswith("cs_")

    payload, headers = stripe_signed(
        completed_event(payment.reference, order.reference, 700, "evt_1")
    )
    url = reverse("orders:webhook", args=["stripe"])
    first = Client().post(url, data=payload, content_type="application/json", headers=headers)
    again = Client().post(url, data=payload, content_type="application/json", headers=headers)
    assert (first.status_code, first.content) == (200, b"succeeded")
    assert (again.status_code, again.content) == (200, b"replayed")
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.invoices.count() == 1

    forged, forged_headers = stripe_signed(
        completed_event(payment.reference, order.reference, 700, "evt_2"), secret="whsec_wrong"
    )
    bad = Client().post(url, data=forged, content_type="application/json", headers=forged_headers)
    assert bad.status_code == 400
    # The test gateway's endpoint does not exist while Stripe is configured.
    assert Client().post(reverse("orders:webhook", args=["test"])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_webhook_with_another_amount_never_marks_paid_ORD_2(customer, stripe_settings) -> None:
    order = submitted_passport_order(customer)
    Payment.objects.create(
        order=order, gateway="stripe", reference="cs_test_x", amount_minor=700, currency="EUR"
    )
    payload, headers = stripe_signed(completed_event("cs_test_x", order.reference, 1, "evt_9"))
    response = Client().post(
        reverse("orders:webhook", args=["stripe"]),
        data=payload,
        content_type="application/json",
        headers=headers,
    )
    assert response.content == b"amount mismatch"
    order.refresh_from_db()
    assert order.status == OrderStatus.SUBMITTED


def test_every_transition_is_listed_and_terminal_states_stay_ORD_1() -> None:
    assert set(TRANSITIONS) == set(OrderStatus.values)
    assert TRANSITIONS[OrderStatus.CLOSED] == frozenset()
    assert TRANSITIONS[OrderStatus.CANCELLED] == frozenset()
    retouch = Order(kind=OrderKind.RETOUCH, status=OrderStatus.IN_PROGRESS)
    passport = Order(kind=OrderKind.PASSPORT, status=OrderStatus.IN_PROGRESS)
    # Only automated passport orders skip the customer's review.
    assert not transition_allowed(retouch, OrderStatus.DELIVERED)
    assert transition_allowed(passport, OrderStatus.DELIVERED)


@pytest.mark.django_db
def test_a_refused_transition_is_a_409_with_a_reason_ORD_1(customer) -> None:
    client = login_client(customer)
    client.post(reverse("orders:retouch_new"), {"instructions": "x"})
    order = Order.objects.get()
    response = client.post(reverse("orders:accept", args=[order.reference]))
    assert response.status_code == 409
    assert b"cannot become delivered" in response.content
    with pytest.raises(TransitionRefused):
        order_transition(actor=None, order=order, to=OrderStatus.PAID, actor_role="system")
    # Submitting with no photo is refused too, and nothing changes.
    response = client.post(reverse("orders:submit", args=[order.reference]))
    assert response.status_code == 409 and b"at least one photo" in response.content
    order.refresh_from_db()
    assert order.status == OrderStatus.DRAFT


@pytest.mark.django_db
def test_unverified_customers_cannot_order_ACC_1(customer) -> None:
    customer.email_verified_at = None
    customer.save()
    response = login_client(customer).post(reverse("orders:retouch_new"), {"instructions": "x"})
    assert response.status_code == 403 and not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_passport_without_a_face_tells_the_customer_why_IMG_6() -> None:
    guest = Client()
    response = guest.post(
        reverse("orders:passport_new"),
        {
            "document": "us_passport",
            "selfie": SimpleUploadedFile("x.jpg", no_face_jpeg(), content_type="image/jpeg"),
        },
    )
    order = Order.objects.get()
    page = guest.get(response["Location"])
    assert page.status_code == 200
    assert order.results.count() == 0
    order.refresh_from_db()
    assert order.failure_message and order.failure_message.encode() in page.content
    # Nothing of the selfie is kept when it cannot make a passport photo.
    assert not order.photos.get().upload


@pytest.mark.django_db
def test_passport_page_refuses_a_missing_selfie_with_400_ACC_4() -> None:
    response = Client().post(reverse("orders:passport_new"), {"document": "us_passport"})
    assert response.status_code == 400 and b"Choose a selfie" in response.content
    response = Client().post(
        reverse("orders:passport_new"),
        {
            "document": "nowhere",
            "selfie": SimpleUploadedFile("s.jpg", selfie_jpeg(600), content_type="image/jpeg"),
        },
    )
    assert response.status_code == 400 and not Order.objects.exists()


def test_invoices_are_declared_kept_for_tax_law_and_reduced_on_erasure_ORD_4(settings) -> None:
    """ORD-4: the registry keeps what tax law needs for the legal period and drops the rest."""
    from datetime import timedelta

    from django.utils import timezone

    from dsr.registry import KeepForLegalDuty, registry
    from orders.models import Invoice

    entry = registry.get("orders.Invoice")
    assert entry is not None and isinstance(entry.erasure, KeepForLegalDuty)
    assert "buyer_email" not in entry.erasure.keep_fields
    assert {"number", "issued_at", "buyer_name", "total_minor"} <= set(entry.erasure.keep_fields)
    assert entry.erasure.reduce["buyer_email"] == ""
    settings.INVOICE_RETENTION_YEARS = 10
    issued = timezone.now()
    until = entry.erasure.until(Invoice(issued_at=issued))
    assert until - issued >= timedelta(days=3650)
    (rule,) = entry.rules
    assert rule.period() >= timedelta(days=3650)
