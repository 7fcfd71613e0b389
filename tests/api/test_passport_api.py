"""Passport photos over the API: documents, an order from a selfie, preview, files (IMG-6)."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import AuditAction, AuditEvent
from images.models import Photo, Result, ResultKind
from images.passport_specs import DOCUMENT_SPECS
from orders.models import Order, OrderKind, OrderStatus
from tests import photos
from tests.api.conftest import api_client
from tests.api.orders_helpers import (
    assert_error,
    create_retouch,
    download,
    is_jpeg,
    pay_through_test_gateway,
)
from tests.conftest import need_service
from tests.factories import UserFactory
from tests.images.test_upload_bad_input import EICAR

pytestmark = pytest.mark.django_db(transaction=True)

DOCUMENTS = reverse("api:passport-documents")
CREATE = reverse("api:passport-orders")


def preview_url(reference: str) -> str:
    return reverse("api:passport-preview", args=[reference])


def files_url(reference: str) -> str:
    return reverse("api:passport-files", args=[reference])


def selfie(data: bytes | None = None, name: str = "selfie.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data or photos.selfie_jpeg(1200), "image/jpeg")


def create(client, document: str = "us_passport", data: bytes | None = None, **headers: str):
    return client.post(
        CREATE, {"document": document, "selfie": selfie(data)}, format="multipart", headers=headers
    )


def test_documents_are_public_and_match_the_specs_IMG_6(anon_api) -> None:
    response = anon_api.get(DOCUMENTS)
    assert response.status_code == 200
    rows = {row["key"]: row for row in response.json()}
    assert set(rows) == set(DOCUMENT_SPECS)
    us = rows["us_passport"]
    assert us["country"] == "US" and us["digital_width_px"] == 600
    assert us["digital_max_bytes"] == 240_000 and us["dpi"] == 300
    assert rows["schengen_visa"]["width_mm"] == 35 and rows["schengen_visa"]["height_mm"] == 45
    assert rows["schengen_visa"]["digital_max_bytes"] is None
    assert all(row["source"] and row["background"] for row in rows.values())


def test_passport_order_full_flow_IMG_6_ORD_2(customer) -> None:
    """The phone portrait (12 MP, turned, with GPS) to delivered files, all over the API."""
    client = api_client(customer)
    portrait = photos.portrait_jpeg(12, orientation=6, gps=True)
    response = create(client, "us_passport", portrait)
    assert response.status_code == 201, response.content[:500]
    reference = response.json()["reference"]
    assert response.json()["kind"] == "passport" and response.json()["document"] == "us_passport"

    preview = client.get(preview_url(reference)).json()
    assert preview["status"] == "ready" and preview["reason"] == ""
    assert preview["preview"]["kind"] == "preview"
    assert is_jpeg(download(preview["preview"]["url"]))
    assert_error(client.get(files_url(reference)), 409, "not_ready")
    # The detail lists only the preview before payment.
    kinds = [
        r["kind"]
        for r in client.get(reverse("api:orders-detail", args=[reference])).json()["results"]
    ]
    assert kinds == ["preview"]

    body = client.post(reverse("api:orders-submit", args=[reference])).json()
    assert body["status"] == "submitted" and body["amount_minor"] == 700
    pay_through_test_gateway(client, reference)
    assert Order.objects.get(reference=reference).status == OrderStatus.DELIVERED

    files = client.get(files_url(reference)).json()["files"]
    assert sorted(f["kind"] for f in files) == ["passport_digital", "passport_sheet"]
    digital = next(f for f in files if f["kind"] == "passport_digital")
    data = download(digital["download_url"])
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG" and img.size == (600, 600) and len(data) <= 240_000
    assert not img.getexif()  # no GPS, no camera: nothing of the original's metadata


def test_a_refused_selfie_leaves_no_order_IMG_5(customer_api) -> None:
    response = create(customer_api, data=b"<html>not an image</html>")
    assert_error(response, 400, "upload_refused")
    assert not Order.objects.exists()


def test_a_selfie_without_a_face_fails_with_a_reason_IMG_6(customer_api) -> None:
    response = create(customer_api, data=photos.no_face_jpeg())
    assert response.status_code == 201
    preview = customer_api.get(preview_url(response.json()["reference"])).json()
    assert preview["status"] == "failed" and preview["reason"] and preview["preview"] is None


def test_preview_while_processing(customer, customer_api) -> None:
    order = Order.objects.create(kind=OrderKind.PASSPORT, customer=customer, document="uk_passport")
    Photo.objects.create(order=order, scan="clean")
    body = customer_api.get(preview_url(order.reference)).json()
    assert body == {
        "reference": order.reference,
        "status": "processing",
        "reason": "",
        "preview": None,
    }
    Photo.objects.filter(order=order).delete()
    assert customer_api.get(preview_url(order.reference)).json()["status"] == "deleted"


@pytest.mark.parametrize(
    ("document", "with_file", "field"),
    [
        ("narnia_passport", True, "document"),
        ("us_passport", False, "selfie"),
        ("", True, "document"),
    ],
)
def test_bad_input_is_400_invalid(customer_api, document, with_file, field) -> None:
    data = {"document": document, "selfie": selfie() if with_file else "not a file"}
    error = assert_error(customer_api.post(CREATE, data, format="multipart"), 400, "invalid")
    assert field in error["fields"]
    assert not Order.objects.exists()


def test_unverified_customer_is_409(db) -> None:
    client = api_client(UserFactory(email_verified_at=None))
    assert_error(create(client), 409, "refused")
    assert not Order.objects.exists()


def test_anonymous_is_401_guests_use_the_web_ACC_4(anon_api) -> None:
    assert_error(create(anon_api), 401, "not_authenticated")
    assert not Order.objects.exists()


def test_idempotency_key_with_the_same_selfie_replays(customer_api) -> None:
    first = create(customer_api, **{"Idempotency-Key": "pp-1"})
    again = create(customer_api, **{"Idempotency-Key": "pp-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["reference"] == first.json()["reference"]
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1 and Photo.objects.count() == 1
    other = create(customer_api, data=photos.selfie_jpeg(1000), **{"Idempotency-Key": "pp-1"})
    assert_error(other, 422, "idempotency_key_reused")
    assert_error(
        create(customer_api, **{"Idempotency-Key": "x" * 101}), 400, "idempotency_key_invalid"
    )
    assert Order.objects.count() == 1


def test_refused_selfie_under_a_key_is_answered_again_and_leaves_nothing(customer_api) -> None:
    bad = b"<html>not an image</html>"
    first = create(customer_api, data=bad, **{"Idempotency-Key": "pp-bad"})
    again = create(customer_api, data=bad, **{"Idempotency-Key": "pp-bad"})
    assert_error(first, 400, "upload_refused")
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert not Order.objects.exists()


def test_malware_refusal_under_a_key_is_still_audited_IMG_5(customer_api, settings) -> None:
    settings.CLAMD_ADDRESS = need_service("TEST_CLAMD_ADDRESS", "clamd")
    data = photos.selfie_jpeg(400) + EICAR
    response = create(customer_api, data=data, **{"Idempotency-Key": "m"})
    error = assert_error(response, 400, "upload_refused")
    assert "malware" in error["message"]
    assert AuditEvent.objects.filter(action=AuditAction.MALWARE_REJECTED).count() == 1
    assert not Order.objects.exists()


def test_passport_create_is_throttled(customer_api, settings) -> None:
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "upload": "1/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    assert create(customer_api, data=b"GIF89a").status_code == 400  # counted all the same
    response = create(customer_api)
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_retouch_order_is_not_a_passport_order(customer_api) -> None:
    reference = create_retouch(customer_api)
    assert_error(customer_api.get(preview_url(reference)), 404, "not_found")
    assert_error(customer_api.get(files_url(reference)), 404, "not_found")


def test_other_customers_passport_order_is_404_IMG_2(customer_api, other_api) -> None:
    reference = create(customer_api).json()["reference"]
    assert_error(other_api.get(preview_url(reference)), 404, "not_found")
    assert_error(other_api.get(files_url(reference)), 404, "not_found")
    assert Result.objects.filter(kind=ResultKind.PREVIEW).count() == 1


def test_every_passport_file_records_its_real_pixel_size(customer_api) -> None:
    """The preview and the print sheet too, not only the digital file (they read 0 x 0)."""
    response = create(customer_api)
    assert response.status_code == 201, response.content
    order = Order.objects.get(reference=response.json()["reference"])
    results = list(Result.objects.filter(order=order))
    assert {r.kind for r in results} >= {ResultKind.PREVIEW, ResultKind.PASSPORT_SHEET}
    for result in results:
        with result.file.open("rb") as fh, Image.open(fh) as image:
            assert image.size == (result.width, result.height), result.kind
