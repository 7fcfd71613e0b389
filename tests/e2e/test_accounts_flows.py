"""Account flows through a real browser, live server, Celery worker and SMTP sink."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from accounts import roles
from accounts.models import Notification, User
from accounts.services import notification_create
from tests.e2e.conftest import Mailbox, fresh_totp, link_in
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.e2e

Screenshot = Callable[..., Path]
NEW_PASSWORD = "lantern-quietly-Orbit-47"


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def log_in(page: Page, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()


def submit_login(page: Page, email: str, password: str) -> int:
    """Post the login form; the HTTP status of the POST's own response."""
    page.goto("/accounts/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", password)
    with page.expect_response(
        lambda r: r.url.endswith("/accounts/login/") and r.request.method == "POST"
    ) as response:
        page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    return response.value.status


def enable_2fa(page: Page) -> tuple[str, int]:
    """From the two-factor page: enrol, confirm with a computed code; (secret, used step)."""
    page.get_by_role("link", name="Turn on two-factor authentication").click()
    expect(page.locator("h1")).to_have_text("Turn on two-factor authentication")
    secret = page.locator("#totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    code, step = fresh_totp(secret)
    page.fill("#id_code", code)
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("h1")).to_have_text("Two-factor authentication")
    expect(page.locator(".messages")).to_contain_text("Two-factor authentication is on.")
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    assert re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", codes.first.inner_text().strip())
    return secret, step


def test_signup_verify_2fa_profile_and_notifications(
    page: Page, maildir: Mailbox, screenshot: Screenshot
) -> None:
    """ACC-1, ACC-3, ACC-5: sign up (13 or older), verify by email, log in, turn on TOTP,
    log in again with password + TOTP, edit the profile, read a notification."""
    email = unique_email("newcomer")

    # Sign up.
    page.goto("/accounts/signup/")
    page.fill("#id_email", email)
    page.fill("#id_full_name", "Nora Newcomer")
    page.select_option("#id_country", "IE")
    page.fill("#id_password", NEW_PASSWORD)
    page.fill("#id_password_confirm", NEW_PASSWORD)
    page.check("input[name=age][value='13_or_older']")
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/accounts/signup/done/$"))
    expect(page.locator("h1")).to_have_text("Check your email")
    user = User.objects.get(email=email)
    assert user.email_verified_at is None and user.age_confirmed_at is not None

    # The worker sends the link over SMTP; open it.
    _subject, body = maildir.wait_for(email, subject_contains="Confirm your email address")
    assert "Nora Newcomer" in body
    link = link_in(body, "/accounts/verify/")
    assert link.startswith(page.url.split("/accounts/")[0])
    page.goto(link)
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.locator(".messages")).to_contain_text(f"{email} is confirmed")
    user.refresh_from_db()
    assert user.email_verified_at is not None

    # Log in with the password only; turn on two-factor authentication.
    log_in(page, email, NEW_PASSWORD)
    expect(page.locator("h1")).to_have_text("My profile")
    page.get_by_role("link", name="Manage two-factor authentication").click()
    secret, used_step = enable_2fa(page)

    # Log out, then password + a fresh TOTP code (a later time step than enrolment's).
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in", exact=True)).to_be_visible()
    log_in(page, email, NEW_PASSWORD)
    expect(page).to_have_url(re.compile(r"/accounts/login/2fa/"))
    expect(page.locator("h1")).to_have_text("Enter your code")
    code, _ = fresh_totp(secret, after_step=used_step)
    page.fill("#id_code", code)
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/accounts/profile/$"))
    expect(page.locator("h1")).to_have_text("My profile")

    # Edit a profile field; it is saved and shown again.
    page.fill("#id_city", "Galway")
    page.fill("#id_company_name", "Newcomer Studio")
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator(".messages")).to_contain_text("Profile saved.")
    page.reload()
    expect(page.locator("#id_city")).to_have_value("Galway")
    user.refresh_from_db()
    assert (user.city, user.company_name) == ("Galway", "Newcomer Studio")

    # A notification shows as unread in the header; the inbox marks it read.
    notification_create(
        user=user, title="Your retouched photo is ready", body="Open your order to download it."
    )
    page.reload()
    badge = page.locator("header .notif .badge")
    expect(badge).to_have_text("1")
    page.locator("header .notif").click()
    expect(page.locator("h1")).to_have_text("Notifications")
    item = page.locator("ul.notifications li", has_text="Your retouched photo is ready")
    expect(item).to_have_class(re.compile(r"\bunread\b"))
    item.get_by_role("button", name="Mark as read").click()
    expect(page.locator("ul.notifications li").first).to_have_class(re.compile(r"\bread\b"))
    expect(page.locator("header .notif .badge")).to_have_count(0)
    assert Notification.objects.get(user=user).read_at is not None
    screenshot(page, "acc-signup-2fa-notifications")


def test_lockout_after_five_failures_spares_other_accounts(
    page: Page, screenshot: Screenshot
) -> None:
    """ACC-3: 5 wrong passwords lock the account from this connection (429, even with the
    right password); another account from the same browser still logs in."""
    victim = UserFactory(email=unique_email("locked"))
    other = UserFactory(email=unique_email("neighbour"))

    for attempt in range(1, 5):
        status = submit_login(page, victim.email, f"wrong-password-{attempt}")
        assert status == 400, (attempt, status)
        expect(page.locator(".errors")).to_contain_text(
            "The email address or password is not correct."
        )
    # The 5th failure reaches the limit: that answer is already the lockout page.
    assert submit_login(page, victim.email, "wrong-password-5") == 429
    expect(page.locator("h1")).to_have_text("Too many failed attempts")

    status = submit_login(page, victim.email, PASSWORD)
    assert status == 429
    expect(page.locator("h1")).to_have_text("Too many failed attempts")
    expect(page.get_by_role("link", name="My profile")).to_have_count(0)
    screenshot(page, "acc-lockout")

    log_in(page, other.email, PASSWORD)
    expect(page).to_have_url(re.compile(r"/accounts/profile/$"))
    expect(page.locator("h1")).to_have_text("My profile")
    expect(page.get_by_text(other.email).first).to_be_visible()


def test_staff_must_enable_2fa_before_the_admin(
    page: Page, staff_roles: None, screenshot: Screenshot
) -> None:
    """ACC-3: a support user enters the admin only after turning on TOTP."""
    support = UserFactory(email=unique_email("support"), role=roles.SUPPORT)
    customer = UserFactory(email=unique_email("customer"), full_name="Carla Customer")

    log_in(page, support.email, PASSWORD)
    expect(page.locator("h1")).to_have_text("My profile")
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/accounts/2fa/$"))
    expect(page.locator(".messages")).to_contain_text(
        "Staff must turn on two-factor authentication"
    )
    enable_2fa(page)

    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("h1")).to_have_text("Support and privacy")
    page.goto("/admin/accounts/user/")
    expect(page.locator("#result_list")).to_contain_text(customer.email)
    expect(page.locator("#result_list")).to_contain_text(support.email)
    # The country filter makes the full page very long: the viewport is enough.
    screenshot(page, "acc-staff-admin-users", full_page=False)


def test_under_13_is_refused_and_nothing_is_kept(page: Page, screenshot: Screenshot) -> None:
    """ACC-5: a visitor under 13 is refused at sign-up (403) and no account row exists."""
    email = unique_email("child")
    page.goto("/accounts/signup/")
    page.fill("#id_email", email)
    page.fill("#id_full_name", "Kim Child")
    page.select_option("#id_country", "IE")
    page.fill("#id_password", NEW_PASSWORD)
    page.fill("#id_password_confirm", NEW_PASSWORD)
    page.check("input[name=age][value='under_13']")
    with page.expect_response(
        lambda r: r.url.endswith("/accounts/signup/") and r.request.method == "POST"
    ) as response:
        page.get_by_role("button", name="Sign up").click()
    page.wait_for_load_state()
    assert response.value.status == 403
    expect(page.locator("h1")).to_have_text("You must be 13 or older to create an account")
    assert not User.objects.filter(email=email).exists()
    assert not User.objects.filter(full_name="Kim Child").exists()
    screenshot(page, "acc-under-13-refused")
