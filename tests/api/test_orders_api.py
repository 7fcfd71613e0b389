"""Orders over the API: the same services and scoping as the order pages (ORD-1..ORD-3)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from dsr.models import ProcessingRestriction
from images.models import Photo, PhotoStatus, Result
from images.services.restriction import HOLD_MESSAGE
from images.services.results import results_upload
from orders.gateways.base import GatewayRequestInvalid, GatewayUnavailable
from orders.models import Order, OrderKind, OrderStatus
from orders.services import order_assign_retoucher, order_mark_ready, order_start_work
from tests.api.conftest import api_client
from tests.api.orders_helpers import (
    assert_error,
    create_retouch,
    download,
    is_jpeg,
    jpeg,
    pay_through_test_gateway,
    retouch_with_photos,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("api:orders-list")


def detail(reference: str) -> str:
    return reverse("api:orders-detail", args=[reference])


def action(name: str, reference: str) -> str:
    return reverse(f"api:orders-{name}", args=[reference])


def make_orders(user: Any, count: int) -> list[Order]:
    return [
        Order.objects.create(kind=OrderKind.RETOUCH, customer=user, instructions=f"n{i}")
        for i in range(count)
    ]


# --- List ---------------------------------------------------------------------------------


def test_list_shows_only_my_orders_newest_first(customer_api, customer, other_customer) -> None:
    mine = make_orders(customer, 3)
    make_orders(other_customer, 2)
    response = customer_api.get(LIST)
    assert response.status_code == 200
    body = response.json()
    assert [o["reference"] for o in body["results"]] == [o.reference for o in reversed(mine)]
    item = body["results"][0]
    assert set(item) == {
        "reference",
        "kind",
        "status",
        "status_label",
        "created_at",
        "updated_at",
        "amount_minor",
        "currency",
        "document",
    }
    assert item["status"] == "draft" and item["status_label"] == "Draft"
    assert item["created_at"].endswith("Z")


def test_list_pages_with_a_cursor(customer_api, customer) -> None:
    orders = make_orders(customer, 5)
    seen: list[str] = []
    url: str | None = LIST + "?page_size=2"
    while url:
        body = customer_api.get(url).json()
        seen += [o["reference"] for o in body["results"]]
        url = body["next"]
    assert seen == [o.reference for o in reversed(orders)]


def test_list_query_count_does_not_grow_with_orders(customer, django_assert_num_queries) -> None:
    client = api_client(customer)
    make_orders(customer, 1)
    client.get(LIST)  # the token's first use also records last_used_at
    with django_assert_num_queries(2) as one:  # the token with its user, the page
        assert len(client.get(LIST).json()["results"]) == 1
    make_orders(customer, 29)
    for order in Order.objects.filter(customer=customer)[:5]:
        Photo.objects.create(order=order, scan="clean")
    with django_assert_num_queries(len(one.captured_queries)):
        body = client.get(LIST + "?page_size=30").json()
    assert len(body["results"]) == 30


def test_anonymous_gets_401(anon_api) -> None:
    assert_error(anon_api.get(LIST), 401, "not_authenticated")
    assert_error(anon_api.post(LIST, {"instructions": "x"}), 401, "not_authenticated")


# --- Create -------------------------------------------------------------------------------


def test_create_retouch_order_ORD_1(customer_api, customer) -> None:
    response = customer_api.post(LIST, {"instructions": "  Remove the red eyes  "}, format="json")
    assert response.status_code == 201
    body = response.json()
    order = Order.objects.get(reference=body["reference"])
    assert order.customer == customer and order.kind == OrderKind.RETOUCH
    assert order.instructions == "Remove the red eyes"
    assert body["status"] == "draft" and body["actions"] == ["add_photos", "submit", "cancel"]


@pytest.mark.parametrize(
    "data",
    [{}, {"instructions": ""}, {"instructions": "x" * 5001}, {"instructions": ["a", "b"]}],
)
def test_create_bad_input_is_400_with_fields(customer_api, data) -> None:
    error = assert_error(customer_api.post(LIST, data, format="json"), 400, "invalid")
    assert "instructions" in error["fields"]
    assert not Order.objects.exists()


def test_create_malformed_json_is_400(customer_api) -> None:
    response = customer_api.post(LIST, b"{not json", content_type="application/json")
    assert_error(response, 400, "malformed_request")


def test_unverified_customer_cannot_order_409(db) -> None:
    user = UserFactory(email_verified_at=None)
    error = assert_error(api_client(user).post(LIST, {"instructions": "x"}), 409, "refused")
    assert "verify your email" in error["message"]


def test_idempotency_key_replays_the_first_answer(customer_api) -> None:
    headers = {"Idempotency-Key": "order-1"}
    first = customer_api.post(LIST, {"instructions": "Brighten"}, format="json", headers=headers)
    again = customer_api.post(LIST, {"instructions": "Brighten"}, format="json", headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Order.objects.count() == 1
    # Another key is another order; no key at all is not deduplicated.
    customer_api.post(LIST, {"instructions": "Brighten"}, headers={"Idempotency-Key": "order-2"})
    customer_api.post(LIST, {"instructions": "Brighten"})
    assert Order.objects.count() == 3


def test_idempotency_key_reused_for_another_body_is_422(customer_api) -> None:
    headers = {"Idempotency-Key": "order-1"}
    customer_api.post(LIST, {"instructions": "Brighten"}, format="json", headers=headers)
    response = customer_api.post(LIST, {"instructions": "Darken"}, format="json", headers=headers)
    assert_error(response, 422, "idempotency_key_reused")
    assert Order.objects.count() == 1


def test_idempotency_keys_are_per_user(customer_api, other_api) -> None:
    headers = {"Idempotency-Key": "same"}
    a = customer_api.post(LIST, {"instructions": "x"}, format="json", headers=headers)
    b = other_api.post(LIST, {"instructions": "x"}, format="json", headers=headers)
    assert a.status_code == b.status_code == 201
    assert a.json()["reference"] != b.json()["reference"]


@pytest.mark.parametrize("key", ["", "   ", "x" * 101, "bad\x01key"])
def test_bad_idempotency_key_is_400(customer_api, key) -> None:
    response = customer_api.post(
        LIST, {"instructions": "x"}, format="json", headers={"Idempotency-Key": key}
    )
    assert_error(response, 400, "idempotency_key_invalid")
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_create_one_order(customer, monkeypatch) -> None:
    """Two requests with the same key at the same moment (real PostgreSQL): one order.

    The create is slowed down so the second request finds no committed key and has to
    wait on the unique index, then replays what the first committed.
    """
    from orders.api import views

    real = views.order_create_retouch

    def slow_create(**kwargs: Any) -> Order:
        order = real(**kwargs)
        time.sleep(0.5)
        return order

    monkeypatch.setattr(views, "order_create_retouch", slow_create)
    barrier = threading.Barrier(2)
    responses: list[Any] = []
    clients = [api_client(customer), api_client(customer)]

    def send(client: APIClient) -> None:
        try:
            barrier.wait(timeout=10)
            responses.append(
                client.post(
                    LIST,
                    {"instructions": "Same"},
                    format="json",
                    headers={"Idempotency-Key": "race-1"},
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json() == responses[1].json()
    assert sorted(r.get("Idempotent-Replayed", "") for r in responses) == ["", "true"]
    assert Order.objects.count() == 1


# --- Detail and actions -------------------------------------------------------------------


def test_detail_of_my_order(customer_api) -> None:
    reference = retouch_with_photos(customer_api, photos=1)
    body = customer_api.get(detail(reference)).json()
    assert body["reference"] == reference and body["instructions"] == "Brighten, please"
    assert body["photo_count"] == 1 and len(body["photos"]) == 1
    assert body["photos"][0]["name"] == "Photo 1"
    assert body["results"] == [] and body["invoices"] == [] and body["events"] == []


def test_unknown_reference_is_404(customer_api) -> None:
    for reference in ("NOPE", "x" * 300, "%00", "..", "ÄÖÜ", "'; DROP TABLE"):
        assert_error(customer_api.get(detail(reference)), 404, "not_found")


def test_submit_needs_a_photo_ORD_1(customer_api) -> None:
    reference = create_retouch(customer_api)
    error = assert_error(customer_api.post(action("submit", reference)), 409, "refused")
    assert "Add at least one photo" in error["message"]


def test_submit_then_cancel(customer_api) -> None:
    reference = retouch_with_photos(customer_api, photos=2)
    body = customer_api.post(action("submit", reference)).json()
    assert body["status"] == "submitted" and body["amount_minor"] == 1800  # ORD-1
    assert body["actions"] == ["pay", "cancel"]
    assert body["events"][0]["to_status"] == "submitted"
    body = customer_api.post(action("cancel", reference)).json()
    assert body["status"] == "cancelled" and body["actions"] == []
    assert_error(customer_api.post(action("cancel", reference)), 409, "refused")


def test_actions_refused_in_the_wrong_state_are_409(customer_api) -> None:
    reference = create_retouch(customer_api)
    assert_error(customer_api.post(action("accept", reference)), 409, "refused")
    assert_error(customer_api.post(action("pay", reference)), 409, "refused")
    response = customer_api.post(action("revision", reference), {"comment": "More"})
    assert_error(response, 409, "refused")


@pytest.mark.parametrize("data", [{}, {"comment": ""}, {"comment": "x" * 2001}])
def test_revision_needs_a_comment(customer_api, data) -> None:
    reference = create_retouch(customer_api)
    response = customer_api.post(action("revision", reference), data, format="json")
    assert_error(response, 400, "invalid")


def test_another_customers_order_is_404_even_with_a_bad_body(customer_api, other_api) -> None:
    reference = create_retouch(customer_api)
    response = other_api.post(action("revision", reference), {}, format="json")
    assert_error(response, 404, "not_found")


def test_gateway_down_is_503_and_bad_request_400(customer_api, monkeypatch) -> None:
    reference = retouch_with_photos(customer_api)
    customer_api.post(action("submit", reference))

    class Down:
        name = "test"

        def checkout_start(self, **kwargs: Any) -> Any:
            raise GatewayUnavailable("timeout")

    class Refusing(Down):
        def checkout_start(self, **kwargs: Any) -> Any:
            raise GatewayRequestInvalid("amount too small")

    monkeypatch.setattr("orders.services.payments.gateway_get", lambda *a: Down())
    assert_error(customer_api.post(action("pay", reference)), 503, "payment_unavailable")
    monkeypatch.setattr("orders.services.payments.gateway_get", lambda *a: Refusing())
    error = assert_error(
        customer_api.post(action("pay", reference)), 400, "payment_request_invalid"
    )
    assert "amount too small" in error["message"]


@pytest.mark.django_db(transaction=True)
def test_restricted_processing_pauses_photos_DSR_1(customer) -> None:
    """Art. 18: the upload is accepted and kept, work is paused and says why; never a 500."""
    client = api_client(customer)
    ProcessingRestriction.objects.create(user=customer, reason="contested")
    reference = retouch_with_photos(client)
    body = client.get(detail(reference)).json()
    assert body["photos"][0]["status"] == PhotoStatus.PROCESSING
    assert body["failure_message"] == HOLD_MESSAGE


@pytest.mark.django_db(transaction=True)
def test_retouch_flow_over_the_api_ORD_1_ORD_2_ORD_3(customer, support, retoucher) -> None:
    client = api_client(customer)
    reference = retouch_with_photos(client, photos=1)
    body = client.get(detail(reference)).json()
    assert body["photos"][0]["status"] == "ready"  # the (eager) worker cleaned it
    client.post(action("submit", reference))
    pay_through_test_gateway(client, reference)
    body = client.get(detail(reference)).json()
    assert body["status"] == "paid" and len(body["invoices"]) == 1
    assert body["invoices"][0]["number"].endswith("1")

    order = Order.objects.get(reference=reference)
    order_assign_retoucher(actor=support, order=order, retoucher=retoucher)
    order_start_work(actor=retoucher, order=order)
    results_upload(actor=retoucher, order=order, files=[(jpeg("done.jpg"), "done.jpg")])
    # Not handed over yet: the customer sees no result.
    assert client.get(detail(reference)).json()["results"] == []
    order.refresh_from_db()
    order_mark_ready(actor=retoucher, order=order)

    body = client.get(detail(reference)).json()
    assert body["actions"] == ["accept", "revision"] and len(body["results"]) == 1
    body = client.post(action("revision", reference), {"comment": "Less contrast"}).json()
    assert body["status"] == "revision_requested" and body["revision_round"] == 1
    assert body["events"][-1]["comment"] == "Less contrast"
    order.refresh_from_db()
    order_start_work(actor=retoucher, order=order)
    results_upload(actor=retoucher, order=order, files=[(jpeg("done2.jpg"), "done2.jpg")])
    order.refresh_from_db()
    order_mark_ready(actor=retoucher, order=order)
    body = client.post(action("accept", reference)).json()
    assert body["status"] == "delivered"

    results = client.get(reverse("api:images-results", args=[reference])).json()
    assert [r["round"] for r in results] == [0, 1]
    assert is_jpeg(download(results[1]["download_url"]))
    assert Result.objects.filter(order=order).count() == 2
    statuses = [e["to_status"] for e in client.get(detail(reference)).json()["events"]]
    assert statuses[:2] == [OrderStatus.SUBMITTED, OrderStatus.PAID]
    assert statuses[-1] == OrderStatus.DELIVERED


# --- Another customer's order, anonymous --------------------------------------------------


ENDPOINTS = [
    ("get", "api:orders-detail", None),
    ("post", "api:orders-submit", None),
    ("post", "api:orders-cancel", None),
    ("post", "api:orders-accept", None),
    ("post", "api:orders-revision", {"comment": "x"}),
    ("post", "api:orders-pay", None),
    ("get", "api:images-photos", None),
    ("post", "api:images-photos", {"note": ""}),
    ("get", "api:images-results", None),
    ("get", "api:passport-preview", None),
    ("get", "api:passport-files", None),
]


@pytest.mark.parametrize(("method", "name", "data"), ENDPOINTS)
def test_another_customers_order_is_404_everywhere_IMG_2(
    customer, other_api, method, name, data
) -> None:
    kind = OrderKind.PASSPORT if name.startswith("api:passport") else OrderKind.RETOUCH
    order = Order.objects.create(kind=kind, customer=customer, document="us_passport")
    response = getattr(other_api, method)(reverse(name, args=[order.reference]), data)
    assert_error(response, 404, "not_found")
    order.refresh_from_db()
    assert order.status == OrderStatus.DRAFT


@pytest.mark.parametrize(("method", "name", "data"), ENDPOINTS)
def test_anonymous_is_401_everywhere(customer, anon_api, method, name, data) -> None:
    order = Order.objects.create(kind=OrderKind.RETOUCH, customer=customer)
    response = getattr(anon_api, method)(reverse(name, args=[order.reference]), data)
    assert_error(response, 401, "not_authenticated")


def test_the_list_rows_fast_path_writes_what_drf_fields_would(customer) -> None:
    """The list serializes row dicts by hand (the busiest call): same JSON as DRF's fields."""
    from orders.api.serializers import LIST_FIELDS, OrderListItemSerializer

    for order in make_orders(customer, 3):
        row = Order.objects.filter(pk=order.pk).values(*LIST_FIELDS).get()
        assert OrderListItemSerializer(row).data == OrderListItemSerializer(order).data
