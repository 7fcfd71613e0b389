"""In Chromium: the API's docs render from our own files under the strict CSP, and a
customer with two-factor login makes a personal token on the profile page (with a fresh
code), uses it, and revokes it. ACC-3."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from tests.e2e.conftest import fresh_totp, log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_every_operation_without_a_cdn(
    page: Page, e2e_settings: Any, screenshot: Any
) -> None:
    outside: list[str] = []
    blocked_scripts: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(e2e_settings.SITE_URL) else None,
    )
    page.on(
        "console",
        lambda m: blocked_scripts.append(m.text) if "script-src" in m.text else None,
    )
    page.goto("/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible()
    schema = httpx.get(f"{e2e_settings.SITE_URL}/api/schema/?format=json").json()
    operations = sum(
        1 for item in schema["paths"].values() for method in item if method != "parameters"
    )
    expect(page.locator(".opblock")).to_have_count(operations)
    screenshot(page, "api-docs")
    assert outside == [] and blocked_scripts == []


def test_a_token_made_on_the_profile_page_works_until_revoked_ACC_3(
    page: Page, e2e_settings: Any, screenshot: Any
) -> None:
    customer = UserFactory(email="tokens@example.com", full_name="Toni Tokens")
    device = TOTPDevice.objects.create(user=customer, name="phone", confirmed=True)
    secret_b32 = base64.b32encode(device.bin_key).decode()
    code, step = fresh_totp(secret_b32)
    log_in(page, customer.email, code)
    page.goto("/accounts/profile/")
    page.get_by_role("link", name="API tokens").click()
    page.fill("#id_password", PASSWORD)
    page.fill("#id_name", "my script")
    page.get_by_role("button", name="Make token").click()
    # Logged in with 2FA is not enough: a token needs the password and a fresh code.
    expect(page.locator("#new-token")).to_have_count(0)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_name", "my script")
    page.fill("#id_code", fresh_totp(secret_b32, after_step=step)[0])
    page.get_by_role("button", name="Make token").click()
    secret = page.locator("#token-secret").inner_text().strip()
    screenshot(page, "api-token-made")
    me_url = f"{e2e_settings.SITE_URL}/api/v1/me/"
    headers = {"Authorization": f"Token {secret}"}
    me = httpx.get(me_url, headers=headers)
    assert me.status_code == 200 and me.json()["email"] == customer.email
    page.reload()
    row = page.locator(f"#token-{secret[:15]}")
    expect(row).to_contain_text("my script")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(f"#token-{secret[:15]}")).to_have_count(0)
    assert httpx.get(me_url, headers=headers).status_code == 401
