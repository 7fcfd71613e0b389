"""A breach from declaration to the affected customer's banner, in Chromium (Done means).

A privacy officer (password and TOTP) declares an incident in the register, scopes it to
"customers who uploaded images between two dates", previews who that finds, and confirms.
The real Celery worker fans out: the affected customer has the email in the SMTP sink
and sees the banner on every page; a customer who uploaded outside the window sees
nothing and gets nothing. The register shows the incident, its recipients, the
deliveries and both clocks. BRE-1, BRE-2.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, Page, expect

from accounts import roles
from accounts.models import User
from dsr.models import BreachNotice, Incident, IncidentRecipient, IncidentStatus
from images.models import Photo
from orders.models import Order, OrderKind
from tests.e2e.conftest import Mailbox, fresh_totp, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
END = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)
SUBJECT = "A security incident affected your photos"


def _uploaded(customer: User, at: datetime) -> None:
    order = Order.objects.create(kind=OrderKind.PASSPORT, customer=customer, document="us_passport")
    photo = Photo.objects.create(order=order, scan="clean", status="ready")
    Photo.objects.filter(pk=photo.pk).update(created_at=at)


def _wait_until_sent(incident: Incident, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while IncidentRecipient.objects.filter(incident=incident).exclude(status="sent").exists():
        assert time.monotonic() < deadline, "the fan-out did not finish"
        time.sleep(0.2)


def _wait_for_status(incident: Incident, status: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while Incident.objects.filter(pk=incident.pk).values_list("status", flat=True).get() != status:
        assert time.monotonic() < deadline, f"the incident never became {status}"
        time.sleep(0.2)


def _customer_sees(browser: Browser, base_url: str, email: str) -> Page:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    log_in(page, email)
    page.goto("/")
    return page


def test_officer_declares_scopes_confirms_and_only_the_affected_are_told_BRE_1_BRE_2(
    page: Page,
    browser: Browser,
    e2e_settings: Any,
    staff_roles: None,
    maildir: Mailbox,
    screenshot: Any,
) -> None:
    affected = UserFactory(email="affected-breach@example.com", full_name="Ada Affected")
    unaffected = UserFactory(email="unaffected-breach@example.com", full_name="Uma Unaffected")
    _uploaded(affected, START + timedelta(days=2))
    _uploaded(unaffected, START - timedelta(days=10))

    officer = UserFactory(email="officer-breach@example.com", role=roles.PRIVACY_OFFICER)
    device = TOTPDevice.objects.create(user=officer, name="app", confirmed=True)
    code, _ = fresh_totp(base64.b32encode(device.bin_key).decode())
    log_in(page, officer.email, code)

    # Declare: the register's fields, and the message the affected will read.
    page.goto("/admin/dsr/incident/add/")
    page.fill("#id_title", "Upload bucket readable by anyone")
    page.fill("#id_aware_at", (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_description", "The bucket with uploads was public for a week in March.")
    page.get_by_label("Images", exact=True).check()
    page.fill("#id_subject_categories", "customers")
    page.fill("#id_approx_subjects", "1")
    page.fill("#id_consequences", "Someone may have seen the photos you uploaded.")
    page.fill("#id_measures_taken", "The bucket is private again; access logs reviewed.")
    page.fill("#id_advice", "No action is needed; tell us if you see your photos elsewhere.")
    page.fill("#id_contact_point", "privacy@example.com")
    page.fill("#id_message_subject", SUBJECT)
    page.fill(
        "#id_message_body",
        "Between 2 and 9 March the photos you uploaded could be read by anyone with the link.",
    )
    page.locator("input[name=_continue]").click()
    expect(page.locator(".messagelist .success")).to_be_visible()
    incident = Incident.objects.get()
    expect(page.locator("#dsr-authority-clock")).to_contain_text("left")
    expect(page.locator("#dsr-users-clock")).to_contain_text("not started")

    # Scope: customers who uploaded images between two dates; preview who that is.
    page.locator("#dsr-incident-scope-link").click()
    page.select_option("#id_kind", "uploads")
    page.fill("#id_start", "2026-03-02T00:00")
    page.fill("#id_end", "2026-03-09T00:00")
    page.get_by_role("button", name="Add the rule").click()
    expect(page.locator("#dsr-scope-rules")).to_contain_text("uploaded images")
    expect(page.locator("#dsr-scope-count")).to_contain_text("1 affected")
    expect(page.locator("#dsr-scope-sample")).to_contain_text(affected.email)
    expect(page.locator("#dsr-scope-sample")).not_to_contain_text(unaffected.email)
    expect(page.locator("#dsr-message-preview")).to_contain_text("could be read by anyone")
    screenshot(page, "breach-scope-preview")

    # Confirm and notify: the worker fans out.
    page.get_by_role("button", name="Confirm and notify").click()
    expect(page.locator(".messagelist .success")).to_contain_text("1 recipient frozen")
    _, body = maildir.wait_for(affected.email, subject_contains=SUBJECT)
    assert "could be read by anyone" in body and incident.reference in body
    _wait_until_sent(incident)
    assert BreachNotice.objects.filter(incident=incident, user_id=affected.pk).exists()
    assert not BreachNotice.objects.filter(user_id=unaffected.pk).exists()

    # The register: the incident, both clocks, progress, recipients and deliveries.
    page.goto("/admin/dsr/incident/")
    row = page.locator("#result_list tr", has_text=incident.reference)
    expect(row).to_contain_text("Upload bucket readable by anyone")
    expect(row.locator("td.field-authority_clock")).to_contain_text("left")
    expect(row.locator("td.field-users_clock")).to_contain_text("due")
    expect(row.locator("td.field-recipients_count")).to_have_text("1")
    row.get_by_role("link", name=incident.reference).click()
    expect(page.locator("#dsr-incident-progress .dsr-progress-sent")).to_have_text("1")
    expect(page.locator("#dsr-authority-clock")).to_contain_text("left")
    # Everyone told: the users' clock shows when it was met (the fan-out's last step).
    _wait_for_status(incident, IncidentStatus.NOTIFIED)
    page.reload()
    expect(page.locator("#dsr-users-clock")).to_contain_text("done")
    screenshot(page, "breach-register-incident")
    page.locator("#dsr-incident-recipients-link").click()
    recipients = page.locator("#result_list")
    expect(recipients).to_contain_text(affected.email)
    expect(recipients).to_contain_text("Sent")
    expect(recipients).not_to_contain_text(unaffected.email)
    expect(recipients.locator("td.field-status")).to_have_text("Sent")
    screenshot(page, "breach-register-recipients")

    # The affected customer sees the banner on every page; the unaffected one sees nothing.
    customer_page = _customer_sees(browser, e2e_settings.SITE_URL, affected.email)
    expect(customer_page.locator("#breach-notice")).to_contain_text(SUBJECT)
    screenshot(customer_page, "breach-banner-affected")
    customer_page.context.close()
    other_page = _customer_sees(browser, e2e_settings.SITE_URL, unaffected.email)
    expect(other_page.locator("body")).to_be_visible()
    expect(other_page.locator("#breach-notice")).to_have_count(0)
    other_page.context.close()
    with pytest.raises(AssertionError, match="no email"):
        maildir.wait_for(unaffected.email, subject_contains=SUBJECT, timeout=1.0)
