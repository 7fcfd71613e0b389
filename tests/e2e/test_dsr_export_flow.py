"""Done means #1 (DSR-1): a customer asks for an export on their privacy page, a real Celery
worker builds it, the email in the SMTP sink carries the link, the customer opens it
logged in and downloads the archive, which holds their data and nothing of another
customer's; the other customer opening the same link gets a 404."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any, cast

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from accounts.models import AuditAction, AuditEvent, RequestLog, User
from accounts.tasks import request_log_flush
from consent.models import ConsentMethod, ConsentPurpose
from consent.services.ledger import consent_record
from dsr.models import ArchiveStatus, Ticket, TicketEventKind
from tests.dsr.test_export import _bytes, _order
from tests.e2e.conftest import Mailbox, link_in, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _log_in(page: Page, email: str) -> None:
    log_in(page, email)
    expect(page.get_by_role("heading", name="My profile")).to_be_visible()


def _data(user: User, tag: str) -> None:
    _order(customer=user, tag=tag)
    RequestLog.objects.create(
        request_id=uuid.uuid4(),
        time=timezone.now(),
        ip_address="203.0.113.7",
        method="GET",
        path=f"/orders/{tag}/",
        user=user,
        status=200,
    )
    consent_record(
        purpose=ConsentPurpose.MARKETING_EMAIL, granted=True, method=ConsentMethod.FORM, user=user
    )


def _doc(zf: zipfile.ZipFile, label: str) -> dict[str, Any]:
    return json.loads(zf.read(f"data/{label}.json"))


def test_customer_asks_for_an_export_and_downloads_only_their_data_DSR_1(
    page: Page, browser: Browser, e2e_settings: Any, maildir: Mailbox, screenshot: Any
) -> None:
    customer = cast(User, UserFactory(email="exporter@example.com", full_name="Erin Exporter"))
    other = cast(User, UserFactory(email="bystander@example.com", full_name="Bob Bystander"))
    _data(customer, "erin")
    _data(other, "bob")

    _log_in(page, customer.email)
    page.goto("/orders/")
    # The browser's own requests reach the log through Redis and the real worker.
    request_log_flush.delay().get(timeout=30)
    assert RequestLog.objects.filter(user=customer, path="/orders/").exists()

    page.goto("/privacy/requests/")
    page.check("input[name=type][value=access]")
    page.get_by_role("button", name="Send my request").click()
    expect(page.get_by_role("heading", name="Privacy request")).to_be_visible()
    ticket = Ticket.objects.get(user=customer)

    subject, body = maildir.wait_for(customer.email, subject_contains="is done", timeout=60)
    assert ticket.reference in subject
    link = link_in(body, "/privacy/requests/download/")
    ticket.refresh_from_db()
    assert ticket.archive.status == ArchiveStatus.READY

    page.goto(link)
    expect(page.get_by_role("heading", name="Your data")).to_be_visible()
    screenshot(page, "dsr-export-download")
    with page.expect_download() as info:
        page.click("#download-archive")
    download = info.value
    assert download.suggested_filename == f"{ticket.reference.lower()}-data.zip"
    with open(download.path(), "rb") as fh:
        zf = zipfile.ZipFile(io.BytesIO(fh.read()))

    # Their data: account, orders, photos, invoices, the request log, consent history.
    names = zf.namelist()
    assert _doc(zf, "accounts.User")["rows"][0]["email"] == customer.email
    assert [r["instructions"] for r in _doc(zf, "orders.Order")["rows"]] == [
        "Brighten it please (erin)"
    ]
    paths = {r["path"] for r in _doc(zf, "accounts.RequestLog")["rows"]}
    assert {"/orders/erin/", "/orders/"} <= paths
    assert [r["purpose"] for r in _doc(zf, "consent.ConsentEvent")["rows"]] == ["marketing_email"]
    assert _bytes("erin") in [zf.read(n) for n in names if n.startswith("files/")]
    assert any(n.startswith("invoices/") for n in names)
    assert "How to complain" in zf.read("index.html").decode()
    # Nothing of the other customer's.
    everything = b"".join(zf.read(n) for n in names)
    for foreign in (other.email, other.full_name, "/orders/bob/", "(bob)"):
        assert foreign.encode() not in everything, foreign
    assert _bytes("bob") not in [zf.read(n) for n in names]

    # The download is audited.
    assert ticket.events.filter(kind=TicketEventKind.DOWNLOAD).count() == 1
    assert AuditEvent.objects.filter(
        action=AuditAction.DSR_EXPORT_DOWNLOADED, actor=customer, subject=customer
    ).exists()

    # The other customer, logged in, opening the same link: 404, no file.
    other_context = browser.new_context(base_url=e2e_settings.SITE_URL)
    try:
        other_page = other_context.new_page()
        _log_in(other_page, other.email)
        response = other_page.goto(link)
        assert response is not None and response.status == 404
        expect(other_page.get_by_text("There is no such archive.")).to_be_visible()
        response = other_page.goto(link + "?get=1")
        assert response is not None and response.status == 404
    finally:
        other_context.close()
    ticket.archive.refresh_from_db()
    assert ticket.archive.downloads == 1
