"""Photos and results over the API: the upload checks, signed links (IMG-1, IMG-2, IMG-5)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import AuditAction, AuditEvent
from images.models import Photo, PhotoStatus, Result, ResultKind
from images.services.processing import result_store
from orders.models import Order, OrderKind, OrderStatus
from tests.api.conftest import api_client
from tests.api.orders_helpers import (
    assert_error,
    create_retouch,
    download,
    is_jpeg,
    jpeg,
    retouch_with_photos,
    upload,
)
from tests.photos import selfie_jpeg

pytestmark = pytest.mark.django_db


def photos_url(reference: str) -> str:
    return reverse("api:images-photos", args=[reference])


def results_url(reference: str) -> str:
    return reverse("api:images-results", args=[reference])


# --- Upload -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_upload_several_photos_with_a_note_IMG_5(customer) -> None:
    client = api_client(customer)
    reference = create_retouch(client)
    response = upload(client, reference, jpeg("a.jpg"), jpeg("b.jpg"), note="Remove the red eyes")
    assert response.status_code == 201, response.content[:500]
    added = response.json()
    assert [p["name"] for p in added] == ["Photo 1", "Photo 2"]
    assert all(p["instructions"] == "Remove the red eyes" for p in added)
    # The (eager) worker has re-encoded them without metadata already.
    listed = client.get(photos_url(reference)).json()
    assert [p["status"] for p in listed] == [PhotoStatus.READY, PhotoStatus.READY]
    assert all(p["reason"] == "" for p in listed)
    photo = Photo.objects.filter(order__reference=reference).first()
    assert photo is not None and "a.jpg" not in (photo.file.name or "")


def test_upload_adds_to_what_is_there(customer_api) -> None:
    reference = retouch_with_photos(customer_api, photos=1)
    response = upload(customer_api, reference, jpeg("b.jpg"))
    assert [p["name"] for p in response.json()] == ["Photo 2"]
    assert len(customer_api.get(photos_url(reference)).json()) == 2


@pytest.mark.parametrize(
    ("files", "phrase"),
    [
        ([], "Choose at least one photo"),
        ([("page.html", b"<html><script>alert(1)</script></html>")], "page.html"),
        ([("empty.jpg", b"")], "is empty"),
        ([("ok.jpg", selfie_jpeg(400)), ("half.jpg", selfie_jpeg(400)[:3000])], "half.jpg"),
    ],
)
def test_refused_upload_is_400_and_stores_nothing_IMG_5(customer_api, files, phrase) -> None:
    reference = create_retouch(customer_api)
    uploads = [SimpleUploadedFile(name, data, "image/jpeg") for name, data in files]
    error = assert_error(upload(customer_api, reference, *uploads), 400, "upload_refused")
    assert phrase in error["message"]
    assert not Photo.objects.exists()


def test_too_large_is_400_upload_refused_IMG_5(customer_api, settings) -> None:
    """The service has one refusal for every reason: a file over the cap is a 400 too."""
    settings.UPLOAD_MAX_BYTES = 50_000
    reference = create_retouch(customer_api)
    response = upload(customer_api, reference, jpeg("big.jpg", 1200))
    error = assert_error(response, 400, "upload_refused")
    assert "is larger than" in error["message"]
    assert not Photo.objects.exists()


def test_more_files_than_allowed_are_refused_IMG_5(customer_api, settings) -> None:
    settings.UPLOAD_MAX_FILES = 2
    reference = create_retouch(customer_api)
    files = [jpeg(f"p{i}.jpg", 200) for i in range(3)]
    error = assert_error(upload(customer_api, reference, *files), 400, "upload_refused")
    assert "at most 2" in error["message"]


def test_upload_after_submit_is_refused(customer_api) -> None:
    reference = retouch_with_photos(customer_api)
    customer_api.post(reverse("api:orders-submit", args=[reference]))
    error = assert_error(upload(customer_api, reference, jpeg()), 400, "upload_refused")
    assert "only while the order is a draft" in error["message"]


def test_bad_upload_requests_are_4xx_never_500(customer_api) -> None:
    reference = create_retouch(customer_api)
    url = photos_url(reference)
    response = customer_api.post(url, {"photos": "not a file"}, format="multipart")
    assert_error(response, 400, "invalid")
    response = customer_api.post(url, {"photos": ["x"]}, format="json")
    assert_error(response, 415, "unsupported_media_type")
    response = customer_api.post(url, {"photos": [jpeg()], "note": "x" * 2001}, format="multipart")
    assert_error(response, 400, "invalid")
    response = customer_api.post(
        url, b"--x\r\nbroken", content_type="multipart/form-data; boundary=x"
    )
    assert response.status_code == 400
    assert not Photo.objects.exists()


def test_upload_is_throttled_with_retry_after(customer_api, settings) -> None:
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "upload": "1/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    reference = create_retouch(customer_api)
    assert upload(customer_api, reference, jpeg()).status_code == 201
    response = upload(customer_api, reference, jpeg())
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    # Reading the photos is not an upload.
    assert customer_api.get(photos_url(reference)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_rejected_photo_says_why(customer) -> None:
    """A file that passes the header check but cannot be decoded: rejected with a reason."""
    client = api_client(customer)
    reference = create_retouch(client)
    order = Order.objects.get(reference=reference)
    Photo.objects.create(
        order=order, scan="clean", status=PhotoStatus.REJECTED, reject_reason="Broken file."
    )
    listed = client.get(photos_url(reference)).json()
    assert listed[0]["status"] == "rejected" and listed[0]["reason"] == "Broken file."
    assert listed[0]["status_label"] == "Rejected"


# --- Results ------------------------------------------------------------------------------


def delivered_order(customer) -> Order:
    order = Order.objects.create(
        kind=OrderKind.RETOUCH, customer=customer, status=OrderStatus.DELIVERED
    )
    result_store(
        order=order,
        photo=None,
        kind=ResultKind.AUTOMATED,
        data=selfie_jpeg(300),
        width=300,
        height=400,
        count_stat=False,
    )
    return order


def test_results_have_signed_links_that_work_without_a_token_IMG_1(customer, customer_api):
    order = delivered_order(customer)
    results = customer_api.get(results_url(order.reference)).json()
    assert len(results) == 1
    item = results[0]
    assert item["kind"] == "automated" and item["expires_at"]
    assert item["url"].startswith("http://testserver/")
    assert is_jpeg(download(item["download_url"]))
    assert is_jpeg(download(item["url"]))
    # A customer opening their own file is not a staff access: nothing audited.
    assert not AuditEvent.objects.filter(action=AuditAction.IMAGE_ACCESSED).exists()


def test_signed_links_expire_and_cannot_be_forged_IMG_2(customer, customer_api, settings):
    order = delivered_order(customer)
    url = customer_api.get(results_url(order.reference)).json()[0]["url"]
    token = url.rstrip("/").rsplit("/", 1)[-1]
    forged = url.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert api_client().get(forged).status_code == 404
    settings.SIGNED_URL_MAX_AGE = -1  # as if more than 5 minutes had passed
    assert api_client().get(url).status_code == 404


def test_results_not_handed_over_are_not_listed(customer, customer_api) -> None:
    order = delivered_order(customer)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.IN_PROGRESS)
    assert customer_api.get(results_url(order.reference)).json() == []
    Result.objects.filter(order=order).update(ready=False)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.DELIVERED)
    assert customer_api.get(results_url(order.reference)).json() == []


def test_another_customers_results_are_404_IMG_2(customer, other_api, anon_api) -> None:
    order = delivered_order(customer)
    assert_error(other_api.get(results_url(order.reference)), 404, "not_found")
    assert_error(anon_api.get(results_url(order.reference)), 401, "not_authenticated")
