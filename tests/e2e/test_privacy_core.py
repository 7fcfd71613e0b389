"""Privacy core end to end: a browser's requests reach the log through Redis and a real
worker, the retention task removes them once too old, and a privacy officer (with 2FA)
sees the run report and the registry in the admin. LOG-1, LOG-2, ACC-6."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from accounts import roles
from accounts.models import RequestLog
from accounts.tasks import request_log_flush
from dsr.models import RetentionRun
from dsr.tasks import retention_run
from tests.e2e.conftest import fresh_totp, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_browser_requests_are_logged_then_purged_and_reported_LOG_1_LOG_2(
    page: Page, staff_roles: None, screenshot: Any
) -> None:
    customer = UserFactory(email="logged@example.com")
    log_in(page, customer.email)
    expect(page.get_by_role("heading", name="My profile")).to_be_visible()
    page.goto("/privacy/?page=2")
    page.goto("/accounts/verify/eyJ1IjoxfQ:1xUtod:lItPPKDZIl0ch03NhcRIX1AJhbRifv/")

    # The web requests only buffered their lines; a real worker writes them.
    assert not RequestLog.objects.filter(user_id=customer.pk).exists()
    request_log_flush.delay().get(timeout=30)
    lines = RequestLog.objects.filter(user_id=customer.pk)
    paths = set(lines.values_list("path", flat=True))
    assert {"/accounts/profile/", "/privacy/?page=2", "/accounts/verify/…/"} <= paths
    line = lines.get(path="/privacy/?page=2")
    assert line.ip_address == "127.0.0.1" and line.status == 200
    assert "Chrome" in line.browser and line.os == "Linux" and line.bytes_sent > 0
    assert line.language  # Chromium sends Accept-Language

    # A month later the retention task (run by the worker) removes them.
    RequestLog.objects.filter(user_id=customer.pk).update(
        time=timezone.now() - timedelta(days=30, hours=1)
    )
    retention_run.delay().get(timeout=60)
    assert not RequestLog.objects.filter(user_id=customer.pk).exists()
    report = RetentionRun.objects.get(rule="accounts.RequestLog")
    assert report.rows_removed >= len(paths) and report.overdue_after == 0

    # A privacy officer (password + TOTP) sees the run report and the registry.
    officer = UserFactory(email="officer@example.com", role=roles.PRIVACY_OFFICER)
    device = TOTPDevice.objects.create(user=officer, name="app", confirmed=True)
    page.context.clear_cookies()
    code, _ = fresh_totp(base64.b32encode(device.bin_key).decode())
    log_in(page, officer.email, code)
    page.goto("/admin/dsr/retentionrun/")
    expect(page.locator("#result_list")).to_contain_text("accounts.RequestLog")
    page.goto("/admin/dsr/personaldatamap/")
    expect(page.locator("#registry")).to_contain_text("deleted 30 days after the request")
    screenshot(page, "privacy-core-registry")
