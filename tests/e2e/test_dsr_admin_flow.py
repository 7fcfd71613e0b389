"""A privacy officer works a customer's request in the admin, in Chromium (Done means #3).

The customer asks (from their account) for a correction of their name. The officer logs
in with password and TOTP, finds the ticket in the list by its deadline, extends it with
a reason (the customer gets the email with the reason from the SMTP sink, and an in-site
notice), then applies the correction: the account changes and the customer is told.
DSR-1, DSR-2.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from accounts import roles
from accounts.models import Notification, User
from dsr.models import Channel, IdentityCheck, RequestType, Ticket, TicketStatus
from dsr.services.tickets import ticket_create
from tests.e2e.conftest import Mailbox, fresh_totp, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _officer_logs_in(page: Page) -> User:
    officer = UserFactory(email="officer-dsr@example.com", role=roles.PRIVACY_OFFICER)
    device = TOTPDevice.objects.create(user=officer, name="app", confirmed=True)
    code, _ = fresh_totp(base64.b32encode(device.bin_key).decode())
    log_in(page, officer.email, code)
    return officer


def _run_action(page: Page, name: str, fields: dict[str, str]) -> None:
    panel = page.locator(f"#action-{name}")
    panel.locator("summary").click()
    for field, value in fields.items():
        panel.locator(f"#id_{name}-{field}").fill(value)
    panel.locator("input[type=submit]").click()


def test_officer_extends_with_a_reason_then_applies_the_correction_DSR_2(
    page: Page, staff_roles: None, maildir: Mailbox, screenshot: Any
) -> None:
    customer = UserFactory(email="rectify-me@example.com", full_name="Casey Wrnogname")
    ticket = ticket_create(
        type=RequestType.RECTIFICATION,
        channel=Channel.ACCOUNT,
        actor=customer,
        user=customer,
        identity_check=IdentityCheck.LOGIN,
        details="My surname is misspelt: it is Rightname.",
    ).ticket
    maildir.wait_for(customer.email, subject_contains="we received")

    _officer_logs_in(page)
    page.goto("/admin/dsr/ticket/")
    expect(page.locator("#dsr-deadline-summary")).to_contain_text("0 overdue")
    row = page.locator("#result_list tr", has_text=ticket.reference)
    expect(row.locator(".dsr-days")).to_contain_text("days left")
    row.get_by_role("link", name=ticket.reference).click()
    expect(page.locator("#dsr-ticket-summary")).to_contain_text("days left")

    # Extend, with the reason the customer is told.
    reason = "We must check the name against three archived orders."
    _run_action(page, "extend", {"reason": reason})
    expect(page.locator(".messagelist .success")).to_contain_text("now due on")
    ticket.refresh_from_db()
    assert ticket.extended_due is not None and ticket.extension_reason == reason
    expect(page.locator("#dsr-ticket-summary")).to_contain_text(f"{ticket.extended_due:%Y-%m-%d}")
    subject, body = maildir.wait_for(customer.email, subject_contains="more time")
    assert ticket.reference in subject and reason in body
    assert f"{ticket.extended_due:%-d %B %Y}" in body
    assert Notification.objects.filter(
        user_id=customer.pk, title__contains=f"{ticket.reference}: deadline extended"
    ).exists()
    screenshot(page, "dsr-admin-extended")

    # Apply the correction the customer asked for; the account changes and they are told.
    expect(page.locator("#action-rectify")).to_contain_text("misspelt")
    _run_action(
        page,
        "rectify",
        {"full_name": "Casey Rightname", "note": "Surname corrected as you asked."},
    )
    expect(page.locator(".messagelist .success")).to_contain_text("corrected full_name")
    customer.refresh_from_db()
    ticket.refresh_from_db()
    assert customer.full_name == "Casey Rightname"
    assert ticket.status == TicketStatus.FULFILLED
    _, body = maildir.wait_for(customer.email, subject_contains="is done")
    assert ticket.reference in body
    screenshot(page, "dsr-admin-fulfilled")
    assert Ticket.objects.count() == 1
