"""Orders end to end through the web views, services and (eager) workers.

Retouching: upload, clean re-encode, submit, pay with the test gateway, retoucher work,
revision, acceptance, download. Passport as a guest. Access rules. Deletion on schedule.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.models import AuditAction, AuditEvent, Notification
from dsr.services.retention import retention_run_all
from images.models import Photo, PhotoStatus, Result, ResultKind
from orders.gateways.base import GatewayOutcome
from orders.gateways.testgateway import test_event_sign
from orders.models import Invoice, Order, OrderStatus, Payment
from orders.services import (
    order_assign_retoucher,
    order_mark_ready,
    order_start_work,
    payment_webhook_receive,
)
from tests.conftest import login_client
from tests.images.helpers import new_draft_order
from tests.photos import selfie_jpeg

pytestmark = pytest.mark.django_db(transaction=True)


def jpeg_upload(name: str = "me.jpg", side: int = 800) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, selfie_jpeg(side), content_type="image/jpeg")


def new_retouch_order(client: Client, *, photos: int = 2) -> Order:
    order = new_draft_order(client)
    files = [jpeg_upload(f"p{i}.jpg") for i in range(photos)]
    response = client.post(
        reverse("orders:photos_upload", args=[order.reference]),
        {"photos": files, "note": "Remove the red eyes"},
    )
    assert response.status_code == 302, response.content[:800]
    return order


def pay_with_test_gateway(client: Client, order: Order) -> None:
    response = client.post(reverse("orders:pay", args=[order.reference]))
    assert response.status_code == 302
    response = client.post(response["Location"], {"result": "pay"})
    assert response.status_code == 302


def fetch(client: Client, url: str) -> bytes:
    """Follow the permission-checked view to its signed link and read the file."""
    response = client.get(url)
    assert response.status_code == 302, response.status_code
    signed = client.get(response["Location"])
    assert signed.status_code == 200
    return b"".join(signed.streaming_content)


def test_uploaded_originals_are_cleaned_by_a_worker_IMG_5(customer) -> None:
    """IMG-5: stored under a random key, EXIF/GPS stripped, orientation applied."""
    client = login_client(customer)
    order = new_retouch_order(client, photos=1)
    photo = Photo.objects.get(order=order)
    assert photo.status == PhotoStatus.READY
    assert not photo.upload  # the raw quarantined upload is gone
    name = photo.file.name or ""
    assert "p0" not in name and order.storage_token in name
    with default_storage.open(photo.file.name) as fh:
        img = Image.open(io.BytesIO(fh.read()))
        assert not img.getexif()
        assert "exif" not in img.info and "icc_profile" not in img.info
    assert photo.instructions == "Remove the red eyes"


def test_retouch_order_full_flow_ORD_1_ORD_2_ORD_3(customer, retoucher, support) -> None:
    client = login_client(customer)
    order = new_retouch_order(client, photos=2)
    response = client.post(reverse("orders:submit", args=[order.reference]))
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.SUBMITTED and order.amount_minor == 1800  # ORD-1

    pay_with_test_gateway(client, order)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    payment = Payment.objects.get(order=order)
    # ORD-2: reference, amount, currency and status only.
    stored = {f.name for f in Payment._meta.concrete_fields}
    assert not {"card", "card_number", "cvc", "pan"} & stored
    assert payment.status == "succeeded" and payment.reference.startswith("test_")
    invoice = Invoice.objects.get(order=order)
    assert invoice.total_minor == 1800 and invoice.buyer_email == customer.email

    order_assign_retoucher(actor=support, order=order, retoucher=retoucher)
    order_start_work(actor=retoucher, order=order)
    retoucher_client = login_client(retoucher, verified=True)
    response = retoucher_client.post(
        reverse("admin:orders_order_results", args=[order.pk]),
        {"results": [jpeg_upload("done.jpg")]},
    )
    assert response.status_code == 302
    order.refresh_from_db()
    order_mark_ready(actor=retoucher, order=order)

    # The customer sees the result, asks one revision, then accepts.
    page = client.get(reverse("orders:detail", args=[order.reference]))
    assert page.status_code == 200 and b"Ready for review" in page.content
    response = client.post(
        reverse("orders:revision", args=[order.reference]), {"comment": "Less contrast"}
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.REVISION_REQUESTED and order.revision_round == 1
    order_start_work(actor=retoucher, order=order)
    retoucher_client.post(
        reverse("admin:orders_order_results", args=[order.pk]),
        {"results": [jpeg_upload("done2.jpg")]},
    )
    order.refresh_from_db()
    order_mark_ready(actor=retoucher, order=order)
    response = client.post(reverse("orders:accept", args=[order.reference]))
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED

    result = Result.objects.filter(order=order, round=1).get()
    data = fetch(client, reverse("images:result", args=[result.pk]) + "?download=1")
    assert Image.open(io.BytesIO(data)).format == "JPEG"

    # ORD-3: every change announced by email and in-site notification.
    statuses = [
        "submitted",
        "paid",
        "in_progress",
        "ready_for_review",
        "revision_requested",
        "delivered",
    ]
    subjects = [m.subject for m in mail.outbox if customer.email in m.to]
    for status in ("received", "Payment received", "ready for your review", "delivered"):
        assert any(status in s for s in subjects), (status, subjects)
    assert Notification.objects.filter(user=customer).count() >= len(statuses)
    assert AuditEvent.objects.filter(action=AuditAction.ORDER_STATUS).count() >= len(statuses)


def test_other_people_get_404_everywhere_IMG_2(customer, other_customer, support, retoucher):
    client = login_client(customer)
    order = new_retouch_order(client, photos=1)
    photo = Photo.objects.get(order=order)
    other = login_client(other_customer)
    staff = login_client(support, verified=True)
    unassigned = login_client(retoucher, verified=True)
    urls = [
        reverse("orders:detail", args=[order.reference]),
        reverse("images:photo", args=[photo.pk]),
    ]
    for c in (other, staff, unassigned, Client()):
        for url in urls:
            assert c.get(url).status_code == 404, url
    # Staff with every order in view still cannot open the image (IMG-2).
    assert staff.get(reverse("admin:orders_order_change", args=[order.pk])).status_code == 200
    # The retoucher sees only assigned orders, in the admin too.
    assert unassigned.get(reverse("admin:orders_order_change", args=[order.pk])).status_code == 404


def test_assigned_retoucher_opening_an_original_is_audited_IMG_2(customer, support, retoucher):
    client = login_client(customer)
    order = new_retouch_order(client, photos=1)
    photo = Photo.objects.get(order=order)
    order_assign_retoucher(actor=support, order=order, retoucher=retoucher)
    staff = login_client(retoucher, verified=True)
    data = fetch(staff, reverse("images:photo", args=[photo.pk]))
    assert data[:2] == b"\xff\xd8"
    event = AuditEvent.objects.get(action=AuditAction.IMAGE_ACCESSED)
    assert event.actor == retoucher and event.subject == customer
    assert event.detail["order"] == order.reference and "assigned" in event.detail["reason"]


def test_signed_links_expire_and_cannot_be_forged_IMG_2(customer, settings) -> None:
    client = login_client(customer)
    order = new_retouch_order(client, photos=1)
    photo = Photo.objects.get(order=order)
    location = client.get(reverse("images:photo", args=[photo.pk]))["Location"]
    assert Client().get(location).status_code == 200  # the link itself is the permission
    token = location.rstrip("/").rsplit("/", 1)[-1]
    forged = location.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert Client().get(forged).status_code == 404
    settings.SIGNED_URL_MAX_AGE = -1  # as if more than 5 minutes had passed
    assert Client().get(location).status_code == 404


def test_webhook_replayed_twice_changes_nothing_the_second_time_ORD_2(customer) -> None:
    client = login_client(customer)
    order = new_retouch_order(client, photos=1)
    client.post(reverse("orders:submit", args=[order.reference]))
    client.post(reverse("orders:pay", args=[order.reference]))
    payment = Payment.objects.get(order=order)
    payload, headers = test_event_sign(
        reference=payment.reference,
        order_ref=order.reference,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        outcome=GatewayOutcome.SUCCEEDED,
    )
    assert payment_webhook_receive(gateway_name="test", payload=payload, headers=headers) == (
        "succeeded"
    )
    assert payment_webhook_receive(gateway_name="test", payload=payload, headers=headers) == (
        "replayed"
    )
    # Through the HTTP endpoint too.
    response = Client().post(
        reverse("orders:webhook", args=["test"]),
        data=payload,
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 200 and response.content == b"replayed"
    assert Invoice.objects.filter(order=order).count() == 1
    assert order.events.filter(to_status=OrderStatus.PAID).count() == 1
    bad = Client().post(
        reverse("orders:webhook", args=["test"]),
        data=payload + b" ",
        content_type="application/json",
        headers=headers,
    )
    assert bad.status_code == 400


def test_invoice_numbers_are_sequential_ORD_4(customer, other_customer) -> None:
    numbers = []
    for user in (customer, other_customer, customer):
        client = login_client(user)
        order = new_retouch_order(client, photos=1)
        client.post(reverse("orders:submit", args=[order.reference]))
        pay_with_test_gateway(client, order)
        numbers.append(Invoice.objects.get(order=order).number)
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]


def test_guest_passport_photo_needs_only_an_email_to_buy_ACC_4(settings) -> None:
    guest = Client()
    response = guest.post(
        reverse("orders:passport_new"),
        {"document": "us_passport", "selfie": jpeg_upload("selfie.jpg", 1200)},
    )
    assert response.status_code == 302, response.content[:800]
    order = Order.objects.get()
    assert order.customer is None and order.guest_email == ""
    preview = Result.objects.get(order=order, kind=ResultKind.PREVIEW)
    digital = Result.objects.get(order=order, kind=ResultKind.PASSPORT_DIGITAL)
    assert guest.get(reverse("images:result", args=[preview.pk])).status_code == 302
    assert guest.get(reverse("images:result", args=[digital.pk])).status_code == 404  # unpaid
    assert Client().get(reverse("orders:detail", args=[order.reference])).status_code == 404

    response = guest.post(reverse("orders:submit", args=[order.reference]), {"email": ""})
    assert response.status_code == 400
    guest.post(reverse("orders:submit", args=[order.reference]), {"email": "Guest@Example.com"})
    pay_with_test_gateway(guest, order)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED and order.guest_email == "guest@example.com"
    data = fetch(guest, reverse("images:result", args=[digital.pk]) + "?download=1")
    img = Image.open(io.BytesIO(data))
    assert img.size == (600, 600) and len(data) <= 240 * 1024
    assert round(img.info["dpi"][0]) == 300

    # The delivery email carries a link that opens the order in another browser.
    delivered = [m for m in mail.outbox if "delivered" in m.subject]
    link = re.search(r"(/orders/guest/[^\s]+/)", delivered[-1].body)
    assert link is not None
    other_browser = Client()
    assert other_browser.get(link.group(1)).status_code == 302
    assert other_browser.get(reverse("orders:detail", args=[order.reference])).status_code == 200


def test_files_are_gone_from_storage_after_the_limits_IMG_4(customer, settings) -> None:
    """IMG-4: originals at most N h after the last edit, results N days after delivery."""
    client = login_client(customer)
    order = new_retouch_order(client, photos=2)
    guest = Client()
    guest.post(
        reverse("orders:passport_new"),
        {"document": "uk_passport", "selfie": jpeg_upload("selfie.jpg", 1200)},
    )
    names = [p.file.name for p in Photo.objects.all() if p.file]
    names += [r.file.name for r in Result.objects.all()]
    assert len(names) == 5 and all(default_storage.exists(n) for n in names)

    now = timezone.now()
    retention_run_all(now=now + timedelta(hours=settings.ORIGINALS_RETENTION_HOURS - 1), force=True)
    assert Photo.objects.filter(order=order).count() == 2  # not yet

    retention_run_all(now=now + timedelta(hours=settings.ORIGINALS_RETENTION_HOURS), force=True)
    assert not Photo.objects.exists() and not Result.objects.exists()
    assert not any(default_storage.exists(n) for n in names)
    # The abandoned guest order itself goes once its files are gone.
    retention_run_all(now=now + timedelta(hours=settings.ORIGINALS_RETENTION_HOURS), force=True)
    assert list(Order.objects.values_list("customer", flat=True)) == [customer.pk]


def test_guest_preview_goes_after_24_hours_IMG_4(settings) -> None:
    guest = Client()
    guest.post(
        reverse("orders:passport_new"),
        {"document": "us_passport", "selfie": jpeg_upload("selfie.jpg", 1200)},
    )
    preview = Result.objects.get(kind=ResultKind.PREVIEW)
    retention_run_all(now=timezone.now() + timedelta(hours=24), force=True)
    assert not Result.objects.filter(pk=preview.pk).exists()
    assert not default_storage.exists(preview.file.name)


def test_instructions_per_photo_can_change_only_in_a_draft_ORD_1(customer, other_customer) -> None:
    client = login_client(customer)
    order = new_retouch_order(client, photos=1)
    photo = Photo.objects.get(order=order)
    url = reverse("orders:photo_note", args=[order.reference, photo.pk])
    assert client.post(url, {"instructions": "Crop tighter"}).status_code == 302
    photo.refresh_from_db()
    assert photo.instructions == "Crop tighter"
    assert login_client(other_customer).post(url, {"instructions": "x"}).status_code == 404
    client.post(reverse("orders:submit", args=[order.reference]))
    response = client.post(url, {"instructions": "Too late"})
    assert response.status_code == 400 and b"only while the order is a draft" in response.content
    photo.refresh_from_db()
    assert photo.instructions == "Crop tighter"
