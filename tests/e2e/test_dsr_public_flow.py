"""A guest's privacy request in Chromium (DSR-1): the public form, the 6-digit code read
from the real SMTP sink, a wrong code refused with its message, the right code verifying
the request; and the emailed link, which only verifies on the page's button."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from dsr.models import IdentityCheck, Ticket, TicketStatus, VerificationChallenge
from tests.e2e.conftest import Mailbox, link_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _own_throttles(e2e_settings: Any) -> None:
    e2e_settings.CACHE_PREFIX = f"e2e-{uuid.uuid4().hex[:12]}"


def _ask(page: Page, email: str, kind: str = "access") -> None:
    page.goto("/privacy/")
    page.locator("#make-request").get_by_role("link", name="public request form").click()
    expect(page.get_by_role("heading", name="Make a privacy request")).to_be_visible()
    page.fill("#id_email", email)
    page.check(f"input[name=type][value={kind}]")
    page.get_by_role("button", name="Send the code").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()


def _code(body: str) -> str:
    match = re.search(r"^\s+(\d{6})\s*$", body, re.M)
    assert match, body
    return match.group(1)


def test_guest_verifies_a_request_with_the_emailed_code_DSR_1(
    page: Page, maildir: Mailbox, screenshot: Any
) -> None:
    email = f"guest-{uuid.uuid4().hex[:8]}@example.com"
    _ask(page, email)
    ticket = Ticket.objects.get(email=email)
    assert ticket.status == TicketStatus.AWAITING_VERIFICATION
    expect(page.locator("main")).to_contain_text(ticket.reference)
    _, body = maildir.wait_for(email, subject_contains="confirm your privacy request")
    code = _code(body)
    assert ticket.reference in body

    wrong = f"{(int(code) + 1) % 10**6:06d}"
    page.fill("#id_code", wrong)
    page.get_by_role("button", name="Confirm my request").click()
    expect(page.locator("#id_code-error")).to_contain_text("This code is not right")
    expect(page.locator("#id_code-error")).to_contain_text("4 more tries")
    screenshot(page, "dsr-public-wrong-code")
    assert VerificationChallenge.objects.get(ticket=ticket).attempts == 1

    page.fill("#id_code", code)
    page.get_by_role("button", name="Confirm my request").click()
    expect(page.locator("#verified")).to_contain_text("your email address is confirmed")
    screenshot(page, "dsr-public-verified")
    ticket.refresh_from_db()
    assert ticket.verified_at is not None and ticket.identity_check == IdentityCheck.EMAIL_CODE
    assert ticket.status != TicketStatus.AWAITING_VERIFICATION
    # The worker may already be done with it: any state but waiting for the code.
    expect(page.locator("#status")).not_to_contain_text("Awaiting verification")


def test_guest_verifies_with_the_emailed_link_on_its_button_DSR_1(
    page: Page, maildir: Mailbox
) -> None:
    email = f"guest-{uuid.uuid4().hex[:8]}@example.com"
    _ask(page, email)
    _, body = maildir.wait_for(email, subject_contains="confirm your privacy request")
    link = link_in(body, "/privacy/requests/public/link/")

    # Opening the link (as a mail scanner would) changes nothing.
    page.context.clear_cookies()
    page.goto(link)
    expect(page.get_by_role("heading", name="Confirm your privacy request")).to_be_visible()
    ticket = Ticket.objects.get(email=email)
    assert ticket.status == TicketStatus.AWAITING_VERIFICATION

    page.get_by_role("button", name="Yes, I made this request").click()
    expect(page.locator("#verified")).to_be_visible()
    ticket.refresh_from_db()
    assert ticket.identity_check == IdentityCheck.EMAIL_LINK

    # A second use of the same link is refused with its message, not a 500.
    response = page.goto(link)
    assert response is not None and response.status == 400
    expect(page.locator("#problem")).to_contain_text("no longer be used")
