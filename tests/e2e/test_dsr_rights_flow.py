"""Restriction of processing end to end, in Chromium (DSR-1).

A customer asks, from their account's privacy page, for the processing of their data to
be restricted: it applies at once, the page and the email say what stops; a retoucher
can no longer start work on their paid order. A privacy officer (password and TOTP) lifts
the restriction in the admin with a reason; the customer is told the reason by email
and in-site, and work can start again.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, Page, expect

from accounts import roles
from accounts.models import Notification
from dsr.models import ProcessingRestriction, Ticket, TicketStatus
from orders.models import Order, OrderKind, OrderStatus
from orders.services import TransitionRefused, order_start_work
from tests.e2e.conftest import Mailbox, fresh_totp, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _officer_page(browser: Browser, base_url: str) -> Page:
    officer = UserFactory(email="officer-rights@example.com", role=roles.PRIVACY_OFFICER)
    device = TOTPDevice.objects.create(user=officer, name="app", confirmed=True)
    code, _ = fresh_totp(base64.b32encode(device.bin_key).decode())
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    log_in(page, officer.email, code)
    return page


def test_customer_restricts_processing_and_an_officer_lifts_it_DSR_1(
    page: Page,
    browser: Browser,
    e2e_settings: Any,
    staff_roles: None,
    maildir: Mailbox,
    screenshot: Any,
) -> None:
    customer: Any = UserFactory(email="restrict-me@example.com")
    retoucher: Any = UserFactory(email="retoucher-rights@example.com", role=roles.RETOUCHER)
    order = Order.objects.create(
        customer=customer,
        kind=OrderKind.RETOUCH,
        status=OrderStatus.PAID,
        paid_at=timezone.now(),
        retoucher=retoucher,
        amount_minor=1500,
    )

    # The customer asks from the account's privacy page.
    log_in(page, customer.email)
    page.goto("/privacy/requests/")
    page.check("input[name=type][value=restriction]")
    page.get_by_role("button", name="Send my request").click()
    expect(page.locator("#status")).to_contain_text("Fulfilled")
    expect(page.locator("#outcome")).to_contain_text("now restricted")
    expect(page.locator("#outcome")).to_contain_text("no marketing email")
    screenshot(page, "dsr-restriction-applied")
    ticket = Ticket.objects.get(user=customer)
    assert ticket.status == TicketStatus.FULFILLED
    _, body = maildir.wait_for(customer.email, subject_contains="is done")
    assert ticket.reference in body and "now restricted" in body

    # While restricted, no work starts on the paid order.
    with pytest.raises(TransitionRefused, match="restricted"):
        order_start_work(actor=retoucher, order=order)

    # The officer lifts it in the admin, with the reason the customer is told.
    restriction = ProcessingRestriction.objects.get(ticket=ticket)
    officer = _officer_page(browser, e2e_settings.SITE_URL)
    try:
        officer.goto(f"/admin/dsr/processingrestriction/{restriction.pk}/change/")
        reason = "Your order data was checked and is accurate."
        officer.fill("#id_lift_reason", reason)
        officer.get_by_role("button", name="Lift the restriction").click()
        expect(officer.locator(".messagelist .success")).to_contain_text("Restriction lifted")
        screenshot(officer, "dsr-restriction-lifted")
    finally:
        officer.context.close()
    restriction.refresh_from_db()
    assert restriction.lifted_at is not None and restriction.lift_reason == reason
    subject, body = maildir.wait_for(
        customer.email, subject_contains="restriction of your data lifted"
    )
    assert ticket.reference in subject and reason in body
    assert Notification.objects.filter(user=customer, title__contains="restriction lifted")

    order_start_work(actor=retoucher, order=order)
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PROGRESS
