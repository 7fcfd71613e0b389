"""Done means #4 (DSR-3, ORD-4): a customer closes the account in Chromium; the real worker
erases it; they can no longer log in, their files are gone from the (versioned, moto S3)
bucket with every version, and their invoice is kept reduced with its purge date."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import User
from dsr.models import RequestType, StepStatus, Ticket, TicketStatus
from dsr.services.erasure import erasure_leftovers
from images.models import Photo, Result
from orders.models import Invoice, Order, OrderStatus, Payment
from tests.conftest import s3_bucket
from tests.e2e.conftest import Mailbox, log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _put(name: str, data: bytes) -> str:
    return default_storage.save(name, ContentFile(data))


def _customer_with_a_delivered_order(email: str) -> tuple[Any, Invoice, list[str]]:
    user: User = UserFactory.create(
        email=email, full_name="Clara Closer", street_address="2 Quay Street"
    )
    now = timezone.now()
    order = Order.objects.create(
        kind="retouch",
        customer=user,
        status=OrderStatus.DELIVERED,
        amount_minor=2500,
        instructions="Soften the background, Clara",
        paid_at=now - timedelta(days=2),
        delivered_at=now - timedelta(days=1),
    )
    token = order.storage_token
    photo = Photo.objects.create(
        order=order, file=_put(f"o/{token}/p/1.jpg", b"original"), scan="clean", status="ready"
    )
    _put(f"o/{token}/p/1.jpg", b"original, second version")
    result = Result.objects.create(
        order=order, photo=photo, kind="retouched", file=_put(f"o/{token}/r/retouched-1.jpg", b"r")
    )
    user.profile_image.name = _put(f"profile-images/{uuid.uuid4().hex}.jpg", b"me")
    user.save(update_fields=["profile_image"])
    Payment.objects.create(
        order=order,
        gateway="fake",
        reference=f"pi_{uuid.uuid4().hex[:10]}",
        amount_minor=2500,
        currency="EUR",
        status="succeeded",
    )
    invoice = Invoice.objects.create(
        series="E2E",
        number=1,
        order=order,
        customer=user,
        buyer_name="Clara Closer",
        buyer_email=email,
        buyer_address="2 Quay Street, Cork",
        buyer_country="IE",
        description="Retouching",
        total_minor=2500,
        tax_minor=467,
        currency="EUR",
        payment_reference="pi_private",
    )
    return user, invoice, [str(f.name) for f in (photo.file, result.file, user.profile_image)]


def _wait_fulfilled(user_id: int, timeout: float = 60.0) -> Ticket:
    deadline = time.monotonic() + timeout
    while True:
        ticket = Ticket.objects.filter(user_id=user_id, type=RequestType.ERASURE).first()
        if (
            ticket is not None
            and ticket.status == TicketStatus.FULFILLED
            and not ticket.erasure_steps.exclude(status=StepStatus.DONE).exists()
        ):
            return ticket
        if time.monotonic() > deadline:
            raise AssertionError(f"the erasure did not finish in {timeout}s: {ticket}")
        time.sleep(0.3)


def _all_keys(settings: Any) -> list[str]:
    options = settings.STORAGES["default"]["OPTIONS"]
    client = default_storage.bucket.meta.client
    keys: list[str] = []
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=options["bucket_name"]):
        keys += [v["Key"] for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
    return keys


def test_customer_closes_the_account_and_is_erased_DSR_3_ORD_4(
    page: Page, settings: Any, maildir: Mailbox, screenshot: Any
) -> None:
    s3_bucket(settings, versioned=True)
    email = f"clara-{uuid.uuid4().hex[:8]}@example.com"
    user, invoice, files = _customer_with_a_delivered_order(email)
    assert set(files) <= set(_all_keys(settings))

    log_in(page, email)
    expect(page.get_by_role("heading", name="My profile")).to_be_visible()
    page.locator("#close-account-section").get_by_role("link", name="Close my account").click()
    expect(page.get_by_role("heading", name="Close my account")).to_be_visible()
    expect(page.locator("main")).to_contain_text("your invoices are kept")
    page.fill("#id_password", PASSWORD)
    page.locator("#close-form").get_by_role("button", name="Close my account").click()
    expect(page.get_by_role("heading", name="Your account is being closed")).to_be_visible()
    reference = page.locator("#reference").inner_text()
    screenshot(page, "dsr-close-account-done")

    # The real worker runs the erasure to the end.
    ticket = _wait_fulfilled(user.pk)
    assert ticket.reference == reference
    # Nothing of theirs is left in any registry model or under their storage keys.
    assert erasure_leftovers(user_id=user.pk, email=email) == {}

    # Their files are gone from storage, every version and delete marker.
    assert not set(files) & set(_all_keys(settings))
    # The invoice is kept, reduced, with its purge date on the receipt.
    invoice.refresh_from_db()
    assert invoice.buyer_email == "" and invoice.payment_reference == ""
    assert invoice.buyer_name == "Clara Closer" and invoice.total_minor == 2500
    purge = timezone.localdate(
        invoice.issued_at + timedelta(days=365 * settings.INVOICE_RETENTION_YEARS + 3)
    )
    kept = {k["records"]: k for k in ticket.outcome["kept"]}
    assert kept["orders.Invoice"]["until"]["latest"] == purge.isoformat()
    # The subject is told, at the address they had, what was kept and until when.
    _, body = maildir.wait_for(email, subject_contains=f"{reference} is done")
    assert f"invoices are kept, reduced to what tax law needs, until {purge}" in body

    # They can no longer log in.
    log_in(page, email)
    expect(page.locator("main")).to_contain_text("The email address or password is not correct")
    screenshot(page, "dsr-close-account-login-refused")
