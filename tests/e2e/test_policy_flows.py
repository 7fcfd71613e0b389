"""Policy versions and the generated privacy page through a real browser (CON-5, TRN-1).

A privacy officer (password + TOTP) writes and publishes a rights-reducing version in the
admin; the real worker emails every account holder exactly once through the SMTP sink; a
customer sees the banner on every page until acknowledging it; the privacy page shows the
retention periods of the current settings and the last-modified date at the top.
"""

from __future__ import annotations

import base64
import mailbox
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, Page, expect

from accounts import roles
from common.fanout import fanout_run_batch
from common.models import FanoutStatus
from consent.models import PolicyNoticeSend, PolicyStatus, PolicyVersion
from consent.services.policy import NOTICE_KIND, policy_notice_cache_clear, policy_publish
from tests.e2e.conftest import Mailbox, fresh_totp
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

Screenshot = Callable[..., Path]
SUBJECT = "our privacy policy changes"


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def count_mail(maildir: Mailbox, to: str, subject_contains: str) -> int:
    box = mailbox.Maildir(maildir.path, create=False)
    count = 0
    for key in box.iterkeys():
        try:
            msg = box[key]
        except (FileNotFoundError, KeyError):
            continue
        recipients = " ".join(str(msg.get(h, "")) for h in ("To", "X-RcptTo")).lower()
        if to.lower() in recipients and subject_contains in str(msg.get("Subject", "")):
            count += 1
    return count


def log_in(page: Page, email: str, *, totp: str | None = None) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    if totp is not None:
        expect(page).to_have_url(re.compile(r"/accounts/login/2fa/"))
        code, _ = fresh_totp(totp)
        page.fill("#id_code", code)
        page.get_by_role("button", name="Verify").click()
    expect(page.locator("h1")).to_have_text("My profile")


def test_rights_reducing_version_reaches_everyone_once_CON_5(
    page: Page,
    browser: Browser,
    e2e_settings: Any,
    staff_roles: None,
    maildir: Mailbox,
    screenshot: Screenshot,
) -> None:
    policy_notice_cache_clear()
    officer = UserFactory(email=unique_email("officer"), role=roles.PRIVACY_OFFICER)
    device = TOTPDevice.objects.create(user=officer, name="e2e phone", confirmed=True)
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    customers = [UserFactory(email=unique_email(f"holder{n}")) for n in range(4)]
    unverified = UserFactory(email=unique_email("unverified"), email_verified_at=None)
    first = PolicyVersion.objects.create(number=1, summary="First published version.")
    policy_publish(version=first, actor=officer)

    # The privacy officer writes a draft and publishes it in the admin.
    log_in(page, officer.email, totp=secret)
    page.goto("/admin/consent/policyversion/add/")
    page.fill("#id_summary", "We now keep server logs for incident reports longer.")
    page.check("#id_reduces_rights")
    page.fill("#id_body", "Who we are.\n\nWhat we do with your data.")
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    version = PolicyVersion.objects.get(number=2)
    assert version.status == PolicyStatus.DRAFT
    page.goto(f"/admin/consent/policyversion/{version.pk}/change/")
    page.get_by_role("link", name="Publish…").click()
    expect(page.locator("#content")).to_contain_text("every account holder")
    screenshot(page, "policy-publish-confirm", full_page=False)
    page.get_by_role("button", name="Publish version 2").click()
    expect(page.locator(".messagelist")).to_contain_text("Version 2 is published")
    version.refresh_from_db()
    assert version.status == PolicyStatus.PUBLISHED and version.published_by == officer

    # The real worker sends one email to every account holder, none to the unverified.
    holders = [*customers, officer]
    for person in holders:
        _, body = maildir.wait_for(person.email, subject_contains=SUBJECT, timeout=60)
        assert "We now keep server logs" in body and "/consent/policy/versions/2/" in body
    deadline = time.monotonic() + 30
    while PolicyNoticeSend.objects.filter(version=version).exclude(status=FanoutStatus.SENT):
        assert time.monotonic() < deadline, "the fan-out did not finish"
        time.sleep(0.3)
    # A duplicate batch (as after a redelivered task) finds nothing left to send.
    assert fanout_run_batch(kind=NOTICE_KIND, group_id=version.pk).claimed == 0
    time.sleep(1)
    assert [count_mail(maildir, p.email, SUBJECT) for p in holders] == [1] * len(holders)
    assert count_mail(maildir, unverified.email, SUBJECT) == 0
    assert PolicyNoticeSend.objects.filter(version=version).count() == len(holders)

    # A customer sees the banner on every page until acknowledging it.
    context = browser.new_context(base_url=e2e_settings.SITE_URL)
    customer_page = context.new_page()
    try:
        log_in(customer_page, customers[0].email)
        banner = customer_page.locator("#policy-notice")
        expect(banner).to_contain_text("reduces your rights")
        customer_page.goto("/orders/")
        expect(banner).to_contain_text("We now keep server logs")
        screenshot(customer_page, "policy-banner", full_page=False)
        customer_page.goto("/accounts/notifications/")
        expect(customer_page.locator("main")).to_contain_text("privacy policy changes")
        customer_page.get_by_role("button", name="I have read this").click()
        expect(customer_page).to_have_url(re.compile(r"/accounts/notifications/$"))
        expect(customer_page.locator("#policy-notice")).to_have_count(0)
        customer_page.goto("/orders/")
        expect(customer_page.locator("#policy-notice")).to_have_count(0)
    finally:
        context.close()


def test_privacy_page_shows_the_settings_and_last_modified_TRN_1_CON_5(
    page: Page, e2e_settings: Any, staff_roles: None, screenshot: Screenshot
) -> None:
    policy_notice_cache_clear()
    e2e_settings.ORIGINALS_RETENTION_HOURS = 48
    e2e_settings.RESULTS_RETENTION_DAYS = 5
    e2e_settings.REQUEST_LOG_RETENTION_DAYS = 21
    officer = UserFactory(email=unique_email("officer"), role=roles.PRIVACY_OFFICER)
    version = PolicyVersion.objects.create(
        number=1, summary="First version.", body="We take privacy seriously."
    )
    policy_publish(version=version, actor=officer)
    version.refresh_from_db()

    page.goto("/privacy/")
    top = page.locator("main p").first
    expect(top).to_have_text(re.compile(r"^Last modified: "))
    expect(top).to_contain_text(f"{version.effective_at:%-d %B %Y}")
    expect(page.locator("#policy-text")).to_contain_text("We take privacy seriously.")
    retention = page.locator("#retention")
    expect(retention).to_contain_text("gone at the latest 48 hours after the order's last edit")
    expect(retention).to_contain_text("gone at the latest 5 days after delivery")
    expect(retention).to_contain_text("Deleted 21 days after the request")
    expect(page.locator("main")).to_contain_text("deleted after 21 days")
    screenshot(page, "privacy-page")

    top.get_by_role("link", name="Version history").click()
    expect(page.locator("#versions")).to_contain_text("First version.")
