"""The REST API end to end, as a third-party script would use it: only the published OpenAPI
document and an HTTP client (httpx), against the live server, a real Celery worker, Redis and
PostgreSQL.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from PIL import Image

from accounts.models import ApiToken, User
from consent.selectors import consent_allows
from dsr.models import RequestType, Ticket
from images.models import ResultKind
from orders.models import Order, OrderStatus
from tests.e2e.api_schema_client import SchemaClient
from tests.factories import PASSWORD, UserFactory
from tests.photos import CAMERA_MAKE, selfie_jpeg

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DOCUMENT = "us_passport"
WAIT = 60.0  # s: the worker makes the preview, then the delivered files


def _email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def api(e2e_settings: Any, celery_worker_thread: Any) -> Iterator[SchemaClient]:
    # Throttles and the services' own limits count in the shared Redis, keyed by the client
    # address (127.0.0.1 for every test run on this machine): a key space of this test's own.
    e2e_settings.CACHE_PREFIX = f"e2e-api-{uuid.uuid4().hex[:12]}"
    client = SchemaClient(e2e_settings.SITE_URL)
    try:
        yield client
    finally:
        client.close()


def _sign_in(api: SchemaClient, email: str) -> str:
    response = api.call(
        "auth_tokens_create", json={"email": email, "password": PASSWORD, "name": "e2e script"}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def _error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return str(body["error"]["code"])


def _pay_on_the_test_gateway(payment_url: str) -> None:
    """What a browser does there: open the page, then post its form with the CSRF token."""
    with httpx.Client(timeout=30.0, follow_redirects=False) as browser:
        page = browser.get(payment_url)
        assert page.status_code == 200, page.text[:500]
        assert "Test payment (no real money)" in page.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token is not None, page.text[:1000]
        paid = browser.post(
            payment_url,
            data={"csrfmiddlewaretoken": token.group(1), "result": "pay"},
            headers={"Referer": payment_url},
        )
        assert paid.status_code == 302, (paid.status_code, paid.text[:500])


def _jpeg(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    assert CAMERA_MAKE.encode() not in data  # the selfie's metadata did not travel (IMG-5)
    return img


def test_api_script_passport_photo_consent_and_access_request_other_customer_404(
    api: SchemaClient, live_server: Any
) -> None:
    """ORD-1, ORD-2, IMG-1, IMG-6, CON-3, DSR-1: with nothing but the published schema and
    httpx, a customer signs in for a token, orders a passport photo from a selfie (with an
    Idempotency-Key), polls the worker's preview, submits and pays on the test gateway, polls
    the delivered files and downloads each through its signed link (a JPEG of the document's
    pixel size), withdraws the newsletter consent and files an access request. Another
    customer's token on every one of those objects gets 404, and changes nothing."""
    casey = UserFactory(email=_email("casey"), full_name="Casey Script")
    olive = UserFactory(email=_email("olive"), full_name="Olive Other")

    # Sign in with email and password: a personal token.
    token = _sign_in(api, casey.email)

    # The document's specification, from the public list.
    documents = api.call("passport_documents_list")
    assert documents.status_code == 200, documents.text
    spec = next(d for d in documents.json() if d["key"] == DOCUMENT)

    # The order from a selfie (multipart), with an Idempotency-Key: a retry gets the same order.
    key = f"e2e-{uuid.uuid4().hex}"
    selfie = selfie_jpeg(1200)
    created = api.call(
        "passport_orders_create",
        token=token,
        headers={"Idempotency-Key": key},
        data={"document": DOCUMENT},
        files={"selfie": ("selfie.jpg", selfie, "image/jpeg")},
    )
    assert created.status_code == 201, created.text
    reference = created.json()["reference"]
    again = api.call(
        "passport_orders_create",
        token=token,
        headers={"Idempotency-Key": key},
        data={"document": DOCUMENT},
        files={"selfie": ("selfie.jpg", selfie, "image/jpeg")},
    )
    assert again.status_code == 201 and again.json()["reference"] == reference, again.text

    # The worker makes the watermarked preview; poll until it is there.
    preview = api.poll(
        "passport_orders_preview",
        lambda r: r.status_code == 200 and r.json()["status"] != "processing",
        what="the preview",
        timeout=WAIT,
        token=token,
        path={"reference": reference},
    ).json()
    assert preview["status"] == "ready", preview
    assert preview["preview"]["kind"] == ResultKind.PREVIEW
    not_yet = api.call("passport_orders_files", token=token, path={"reference": reference})
    assert not_yet.status_code == 409 and _error_code(not_yet) == "not_ready"

    # Submit, then pay: the API hands out the gateway's page, which a browser completes.
    submitted = api.call("orders_submit", token=token, path={"reference": reference})
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == OrderStatus.SUBMITTED
    pay = api.call("orders_pay", token=token, path={"reference": reference})
    assert pay.status_code == 200, pay.text
    _pay_on_the_test_gateway(urljoin(live_server.url, pay.json()["payment_url"]))

    # The worker makes the final files; poll until they are delivered.
    files = api.poll(
        "passport_orders_files",
        lambda r: r.status_code == 200 and bool(r.json()["files"]),
        what="the delivered files",
        timeout=WAIT,
        token=token,
        path={"reference": reference},
    ).json()["files"]
    kinds = {f["kind"] for f in files}
    assert kinds == {ResultKind.PASSPORT_DIGITAL, ResultKind.PASSPORT_SHEET}, files
    for link in files:
        # A signed link works without the token: it is what a script hands to a downloader.
        with httpx.Client(timeout=30.0) as anyone:
            download = anyone.get(urljoin(live_server.url, link["download_url"]))
        assert download.status_code == 200, download.status_code
        img = _jpeg(download.content)
        assert img.size == (link["width"], link["height"]), (img.size, link)
        if link["kind"] == ResultKind.PASSPORT_DIGITAL:
            assert img.size == (spec["digital_width_px"], spec["digital_height_px"])
            limit = spec["digital_max_bytes"]
            assert limit is None or len(download.content) <= limit
        else:
            # The print sheet: 4 x 6 in at the document's dpi.
            assert sorted(img.size) == [4 * spec["dpi"], 6 * spec["dpi"]], img.size
    order = api.call("orders_retrieve", token=token, path={"reference": reference})
    assert order.status_code == 200 and order.json()["status"] == OrderStatus.DELIVERED

    # The newsletter: granted, then withdrawn just as easily (CON-3).
    granted = api.call("consents_grant", token=token, path={"key": "marketing_email"})
    assert granted.status_code == 200 and granted.json()["granted"] is True, granted.text
    withdrawn = api.call("consents_withdraw", token=token, path={"key": "marketing_email"})
    assert withdrawn.status_code == 200 and withdrawn.json()["granted"] is False, withdrawn.text
    consents = api.call("consents_list", token=token).json()
    assert not next(p for p in consents["purposes"] if p["key"] == "marketing_email")["granted"]

    # An access request (DSR-1), with its legal due date (DSR-2).
    asked = api.call("privacy_requests_create", token=token, json={"type": "access"})
    assert asked.status_code == 201, asked.text
    ticket_ref = asked.json()["request"]["reference"]
    assert asked.json()["request"]["due_on"]
    mine = api.call("privacy_requests_retrieve", token=token, path={"reference": ticket_ref})
    assert mine.status_code == 200 and mine.json()["type"] == RequestType.ACCESS

    # The other customer, signed in the same way, finds none of it: 404 on every operation
    # of the schema that names an order or a privacy request by its reference (reads and
    # actions alike, the flow's own among them).
    other = _sign_in(api, olive.email)
    by_reference = {
        op.operation_id: ticket_ref if op.operation_id.startswith("privacy_requests") else reference
        for op in api.operations.values()
        if "{reference}" in op.path
    }
    flow = {
        "orders_retrieve",
        "passport_orders_preview",
        "passport_orders_files",
        "orders_submit",
        "orders_pay",
        "orders_results_list",
        "orders_photos_list",
        "privacy_requests_retrieve",
        "privacy_requests_export",
    }
    assert flow <= set(by_reference), sorted(by_reference)
    # Valid input where an operation takes some: the answer must be about the object.
    bodies: dict[str, dict[str, Any]] = {
        "orders_revision": {"json": {"comment": "A little less warmth, please."}},
        "orders_photos_upload": {
            "files": {"photos": ("p.jpg", selfie_jpeg(800), "image/jpeg")},
        },
    }
    for operation_id, ref in sorted(by_reference.items()):
        response = api.call(
            operation_id, token=other, path={"reference": ref}, **bodies.get(operation_id, {})
        )
        assert response.status_code == 404, (operation_id, response.status_code, response.text)
        assert _error_code(response) == "not_found", operation_id
        assert ref not in response.text, operation_id
    # The same calls without any token: 401, never a hint of the object.
    anonymous = api.call("orders_retrieve", path={"reference": reference})
    assert anonymous.status_code == 401 and _error_code(anonymous) == "not_authenticated"

    # What the database holds afterwards: Casey's order delivered and paid (the gateway's
    # reference only, ORD-2), untouched by Olive's calls; the consent off; one access request.
    order_row = Order.objects.get(reference=reference)
    assert order_row.customer_id == casey.pk and order_row.status == OrderStatus.DELIVERED
    assert order_row.paid_at is not None
    assert Order.objects.filter(customer_id=casey.pk).count() == 1  # the retry made no second
    assert not Order.objects.filter(customer_id=olive.pk).exists()
    assert not consent_allows(purpose="marketing_email", user=casey)
    ticket = Ticket.objects.get(reference=ticket_ref)
    assert ticket.type == RequestType.ACCESS and ticket.user_id == casey.pk
    assert not Ticket.objects.filter(user_id=olive.pk).exists()
    assert set(ApiToken.objects.values_list("user_id", flat=True)) == {casey.pk, olive.pk}
    assert User.objects.filter(pk__in=[casey.pk, olive.pk]).count() == 2
