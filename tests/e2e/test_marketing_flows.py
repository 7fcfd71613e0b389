"""Newsletter end to end: double opt-in in the browser, a campaign sent by a real worker
through Redis to a real SMTP sink, one-click unsubscribe from the footer link (and the
RFC 8058 POST), and the next campaign skipping them. CON-1, CON-2, CON-3."""

from __future__ import annotations

import base64
import mailbox
import time
import urllib.error
import urllib.request
import uuid
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, Page, expect

from accounts import roles
from consent.models import (
    Campaign,
    CampaignSend,
    CampaignStatus,
    ConsentEvent,
    ConsentMethod,
    Subscriber,
    SubscriberStatus,
)
from consent.selectors import consent_allows
from tests.consent.marketing_helpers import SELLER_ADDRESS, subscriber_make
from tests.e2e.conftest import Mailbox, fresh_totp, link_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _messages_to(box: Mailbox, address: str, subject: str) -> list[EmailMessage]:
    found = []
    for message in mailbox.Maildir(box.path, factory=None, create=False):
        parsed = message_from(message)
        if address.lower() in str(parsed.get("To", "")).lower() and subject in str(
            parsed.get("Subject", "")
        ):
            found.append(parsed)
    return found


def message_from(message: Any) -> EmailMessage:
    from email import message_from_bytes

    return message_from_bytes(message.as_bytes(), policy=policy.default)


def _wait_message(box: Mailbox, address: str, subject: str, timeout: float = 30) -> EmailMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _messages_to(box, address, subject)
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no “{subject}” to {address} reached the SMTP sink")


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _wait_sent(campaign: Campaign, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        campaign.refresh_from_db()
        if campaign.status == CampaignStatus.SENT:
            return
        time.sleep(0.2)
    raise AssertionError(f"campaign {campaign.pk} did not finish: {campaign.status}")


def _staff_page(browser: Browser, base_url: str) -> Page:
    marketer = UserFactory(email=f"mia-{uuid.uuid4().hex[:8]}@example.com", role=roles.MARKETING)
    device = TOTPDevice.objects.create(user=marketer, name="app", confirmed=True)
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(15_000)
    staff = context.new_page()
    staff.goto("/accounts/login/")
    staff.fill("#id_email", marketer.email)
    staff.fill("#id_password", PASSWORD)
    staff.get_by_role("button", name="Log in").click()
    code, _ = fresh_totp(base64.b32encode(device.bin_key).decode())
    staff.fill("#id_code", code)
    staff.get_by_role("button", name="Verify").click()
    return staff


def _send_campaign(staff: Page, subject: str) -> Campaign:
    staff.goto("/admin/consent/campaign/add/")
    staff.fill("#id_subject", subject)
    staff.fill("#id_body", "Passport photos at half price this week.\n\nSee you soon.")
    staff.locator("input[name=_continue]").click()
    expect(staff.locator("#campaign-start")).to_be_visible()
    staff.locator("#campaign-start").click()
    expect(staff.locator(".messagelist")).to_contain_text("is being sent")
    return Campaign.objects.get(subject=subject)


def test_subscribe_confirm_receive_unsubscribe_and_be_skipped_CON_1_CON_2_CON_3(
    page: Page,
    browser: Browser,
    e2e_settings: Any,
    maildir: Mailbox,
    staff_roles: None,
    screenshot: Any,
) -> None:
    e2e_settings.SELLER_ADDRESS = SELLER_ADDRESS
    e2e_settings.SELLER_NAME = "Clearframe Photo Ltd"
    run = uuid.uuid4().hex[:8]
    person = f"dana-{run}@example.com"
    one_click = f"olly-{run}@example.com"
    stays = f"sam-{run}@example.com"

    # 1. Subscribe in the browser, from the footer link; confirm from the emailed link.
    page.goto("/")
    page.locator("footer").get_by_role("link", name="Newsletter").click()
    expect(page.locator("#newsletter-wording")).to_contain_text("newsletter")
    page.fill("#id_email", person)
    page.get_by_role("button", name="Subscribe").click()
    expect(page.locator("#newsletter-sent")).to_be_visible()
    _, body = maildir.wait_for(person, subject_contains="Confirm your subscription")
    page.goto(link_in(body, "/consent/newsletter/confirm/"))
    assert Subscriber.objects.get(email=person).status == SubscriberStatus.PENDING  # GET only
    page.get_by_role("button", name="Yes, subscribe me").click()
    expect(page.locator("#newsletter-confirmed")).to_contain_text("confirmed")
    event = ConsentEvent.objects.get(email=person)
    assert event.granted and event.method == ConsentMethod.EMAIL_LINK
    assert event.ip_address == "127.0.0.1" and "Chrome" in event.user_agent

    subscriber_make(one_click)
    subscriber_make(stays)

    # 2. Staff start a campaign in the admin; the worker sends it to the sink.
    staff = _staff_page(browser, e2e_settings.SITE_URL)
    first = _send_campaign(staff, f"Spring offer {run}")
    _wait_sent(first)
    message = _wait_message(maildir, person, f"Spring offer {run}")
    site = e2e_settings.SITE_URL
    # (The sink's Maildir writer folds long headers: compare the unfolded value.)
    header = str(message["List-Unsubscribe"]).strip()
    assert header.startswith(f"<{site}/consent/unsubscribe/") and header.endswith("/>")
    assert str(message["List-Unsubscribe-Post"]).strip() == "List-Unsubscribe=One-Click"
    assert str(message["Message-ID"]).strip().startswith(f"<campaign-{first.pk}.")
    text = _text(message)
    assert "advertisement" in text.lower() and "12 Harbour Road" in text
    footer_link = text.strip().splitlines()[-1]
    assert footer_link == header[1:-1]  # the last line of the email is the link

    # 3. One click from the footer link, in a browser that never logged in.
    page.context.clear_cookies()
    page.goto(footer_link)
    assert consent_allows(purpose="marketing_email", email=person)  # GET changed nothing
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.locator("#unsubscribed")).to_be_visible()
    screenshot(page, "marketing-unsubscribed")
    assert not consent_allows(purpose="marketing_email", email=person)

    # 4. The RFC 8058 one-click POST, as a mail provider sends it: no cookie, no token.
    other = _wait_message(maildir, one_click, f"Spring offer {run}")
    url = str(other["List-Unsubscribe"]).strip()[1:-1]
    request = urllib.request.Request(
        url,
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 200 and response.geturl() == url  # no redirect
    assert not consent_allows(purpose="marketing_email", email=one_click)

    # 5. The next campaign skips both; the one who stayed still gets it.
    second = _send_campaign(staff, f"Summer offer {run}")
    _wait_sent(second)
    _wait_message(maildir, stays, f"Summer offer {run}")
    assert not _messages_to(maildir, person, f"Summer offer {run}")
    assert not _messages_to(maildir, one_click, f"Summer offer {run}")
    assert CampaignSend.objects.filter(campaign=second, subscriber__email=person).count() == 0
    staff.context.close()


def test_forged_unsubscribe_link_shows_a_clear_page_CON_1(page: Page) -> None:
    page.goto("/consent/unsubscribe/1.abc:1tZZZZ:forged-signature/")
    expect(page.locator("#link-invalid")).to_contain_text("not valid")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(
            urllib.request.Request(page.url, data=b"List-Unsubscribe=One-Click", method="POST"),
            timeout=15,
        )
    assert excinfo.value.code == 400
