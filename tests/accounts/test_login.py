"""Login: one account per address, Argon2 hashes (ACC-2), an optional second factor (ACC-3)."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import check_password, identify_hasher
from django.test import Client

from accounts.models import AuditAction, AuditEvent, RecoveryCode, User
from tests.accounts.helpers import enable_2fa, login_data, totp_now, wrong_totp
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
LOGIN_2FA = "/accounts/login/2fa/"
PROFILE = "/accounts/profile/"


def _logged_in_as(client: Client) -> int | None:
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


@pytest.mark.parametrize(
    "variant",
    ["casey@example.com", "CASEY@EXAMPLE.COM", "  Casey@Example.com  ", "casey@Example.COM"],
)
def test_case_and_whitespace_variants_log_in_the_same_account(client, customer, variant):
    response = client.post(LOGIN, login_data(variant))

    assert response.status_code == 302
    assert response["Location"] == PROFILE
    assert _logged_in_as(client) == customer.pk
    assert client.get(PROFILE).status_code == 200
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN, subject=customer).count() == 1


def test_wrong_password_is_refused_with_a_message(client, customer):
    response = client.post(LOGIN, login_data(customer.email, "not-the-password-1"))

    assert response.status_code == 400
    assert b"email address or password is not correct" in response.content
    assert _logged_in_as(client) is None
    failed = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert failed.subject == customer
    assert failed.ip_address == "127.0.0.1"


def test_unknown_email_gets_the_same_message(client, customer):
    response = client.post(LOGIN, login_data("nobody@example.com"))
    assert response.status_code == 400
    assert b"email address or password is not correct" in response.content


def test_inactive_user_cannot_log_in(client, customer):
    User.objects.filter(pk=customer.pk).update(is_active=False)
    assert client.post(LOGIN, login_data(customer.email)).status_code == 400
    assert _logged_in_as(client) is None


def test_next_is_followed_only_within_the_site(client, customer):
    response = client.post(
        LOGIN, {**login_data(customer.email), "next": "https://evil.example.net/"}
    )
    assert response["Location"] == PROFILE
    client.logout()
    response = client.post(LOGIN, {**login_data(customer.email), "next": "/accounts/2fa/"})
    assert response["Location"] == "/accounts/2fa/"


def test_passwords_are_stored_as_argon2_hashes_ACC_2(customer, settings):
    assert settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    assert identify_hasher(customer.password).algorithm == "argon2"
    assert customer.password.startswith("argon2$argon2id$")
    assert PASSWORD not in customer.password
    assert check_password(PASSWORD, customer.password)

    user = User.objects.create_user(
        "fresh@example.com", "another-good-password-7", full_name="F", country="IE"
    )
    assert user.password.startswith("argon2$argon2id$")
    assert "another-good-password-7" not in user.password


def test_logout_ends_the_session(customer_client, customer):
    response = customer_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert _logged_in_as(customer_client) is None
    assert customer_client.get(PROFILE).status_code == 302
    assert AuditEvent.objects.filter(action=AuditAction.LOGOUT, subject=customer).exists()


# --- second factor ---------------------------------------------------------------------


@pytest.fixture
def with_2fa(customer):
    return enable_2fa(customer)


def _password_step(client: Client, email: str = "casey@example.com") -> None:
    response = client.post(LOGIN, login_data(email))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN_2FA + "?")
    assert _logged_in_as(client) is None  # the password alone does not log in


def test_login_with_2fa_goes_to_the_second_step_ACC_3(client, customer, with_2fa):
    response = client.post(LOGIN, login_data(customer.email))

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_2FA}?next=%2Faccounts%2Fprofile%2F"
    assert _logged_in_as(client) is None
    assert client.get(PROFILE).status_code == 302
    assert client.get(response["Location"]).status_code == 200


def test_valid_totp_completes_the_login_ACC_3(client, customer, with_2fa):
    device, _ = with_2fa
    _password_step(client)

    response = client.post(LOGIN_2FA, {"code": totp_now(device), "next": PROFILE})

    assert response.status_code == 302
    assert response["Location"] == PROFILE
    assert _logged_in_as(client) == customer.pk
    assert client.session.get("otp_device_id") == device.persistent_id
    assert client.get(PROFILE).status_code == 200
    assert AuditEvent.objects.filter(
        action=AuditAction.LOGIN, subject=customer, detail={"second_factor": True}
    ).exists()


def test_wrong_totp_does_not_log_in_ACC_3(client, customer, with_2fa):
    device, _ = with_2fa
    _password_step(client)

    response = client.post(LOGIN_2FA, {"code": wrong_totp(device)})

    assert response.status_code == 400
    assert b"That code is not right" in response.content
    assert _logged_in_as(client) is None
    assert client.get(PROFILE).status_code == 302


def test_totp_code_cannot_be_replayed(client, customer, with_2fa):
    device, _ = with_2fa
    code = totp_now(device)
    _password_step(client)
    assert client.post(LOGIN_2FA, {"code": code}).status_code == 302

    other = Client()
    _password_step(other)
    assert other.post(LOGIN_2FA, {"code": code}).status_code == 400
    assert _logged_in_as(other) is None


def test_second_step_without_the_password_step_goes_to_login(client, customer, with_2fa):
    device, _ = with_2fa
    response = client.post(LOGIN_2FA, {"code": totp_now(device)})
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert _logged_in_as(client) is None


def test_recovery_code_completes_the_login_once_ACC_3(client, customer, with_2fa):
    _, codes = with_2fa
    _password_step(client)
    response = client.post(LOGIN_2FA, {"code": codes[0].upper()})
    assert response.status_code == 302
    assert _logged_in_as(client) == customer.pk
    assert RecoveryCode.objects.filter(user=customer, used_at__isnull=False).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.RECOVERY_CODE_USED).count() == 1

    second = Client()
    _password_step(second)
    response = second.post(LOGIN_2FA, {"code": codes[0]})
    assert response.status_code == 400
    assert _logged_in_as(second) is None

    response = second.post(LOGIN_2FA, {"code": codes[1]})
    assert response.status_code == 302
    assert _logged_in_as(second) == customer.pk


def test_another_users_recovery_code_does_not_work(client, customer, other_customer, with_2fa):
    _, other_codes = enable_2fa(other_customer)
    _password_step(client)
    assert client.post(LOGIN_2FA, {"code": other_codes[0]}).status_code == 400
    assert _logged_in_as(client) is None


def test_five_wrong_second_factor_codes_send_you_back_to_login_ACC_3(client, customer, with_2fa):
    device, codes = with_2fa
    _password_step(client)
    bad = wrong_totp(device)
    for _ in range(4):
        assert client.post(LOGIN_2FA, {"code": bad}).status_code == 400

    response = client.post(LOGIN_2FA, {"code": bad})

    assert response.status_code == 302
    assert response["Location"] == LOGIN
    # The half-finished login is gone: even a good recovery code no longer completes it.
    response = client.post(LOGIN_2FA, {"code": codes[0]})
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert _logged_in_as(client) is None
    assert not RecoveryCode.objects.filter(user=customer, used_at__isnull=False).exists()
    assert (
        AuditEvent.objects.filter(
            action=AuditAction.LOGIN_FAILED, subject=customer, detail={"step": "second_factor"}
        ).count()
        == 5
    )
