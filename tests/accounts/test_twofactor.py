"""Two-factor enrolment and removal pages (ACC-3)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditAction, AuditEvent, RecoveryCode
from accounts.services.twofactor import totp_device_for
from tests.accounts.helpers import enable_2fa, totp_now, wrong_totp
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

SETUP = "/accounts/2fa/setup/"
TWOFA = "/accounts/2fa/"
DISABLE = "/accounts/2fa/disable/"
CODE_RE = re.compile(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>")


def _enrolment_device(client: Client) -> TOTPDevice:
    return TOTPDevice.objects.get(pk=client.session["totp_enrol_device"])


def test_setup_shows_an_inline_svg_qr_code_with_no_external_url(customer_client, customer):
    response = customer_client.get(SETUP)

    assert response.status_code == 200
    html = response.content.decode()
    qr = re.search(r'<div class="qr">(.*?)</div>', html, re.S)
    assert qr
    assert qr.group(1).lstrip().startswith(("<svg", "<?xml"))
    assert "<svg" in qr.group(1)
    assert "<img" not in qr.group(1)
    # Nothing (the secret least of all) is fetched from or sent to another site.
    assert not re.findall(r'(?:src|href|action)="(?:https?:)?//', html)
    assert "otpauth://" not in html
    device = _enrolment_device(customer_client)
    assert device.user == customer
    assert not device.confirmed
    assert totp_device_for(customer) is None


def test_confirm_with_correct_code_enables_2fa_and_shows_codes_once_ACC_3(
    customer_client, customer, settings
):
    customer_client.get(SETUP)
    device = _enrolment_device(customer_client)

    response = customer_client.post(SETUP, {"code": totp_now(device)})

    assert response.status_code == 302
    assert response["Location"] == TWOFA
    assert totp_device_for(customer) == device
    page = customer_client.get(TWOFA).content.decode()
    shown = CODE_RE.findall(page)
    assert len(shown) == settings.RECOVERY_CODE_COUNT
    assert len(set(shown)) == len(shown)
    assert RecoveryCode.objects.filter(user=customer, used_at__isnull=True).count() == len(shown)
    # Only hashes are stored.
    stored = set(RecoveryCode.objects.filter(user=customer).values_list("code_hash", flat=True))
    assert not {c for c in shown if c in stored or c.replace("-", "") in stored}
    assert AuditEvent.objects.filter(action=AuditAction.TWOFA_ENABLED, subject=customer).exists()
    # Shown once: the next visit no longer lists them.
    again = customer_client.get(TWOFA).content.decode()
    assert CODE_RE.findall(again) == []
    assert "is <strong>on</strong>" in again
    # The enrolling session counts as verified with the second factor.
    assert customer_client.session.get("otp_device_id") == device.persistent_id


def test_confirm_with_wrong_code_is_refused(customer_client, customer):
    customer_client.get(SETUP)
    device = _enrolment_device(customer_client)

    response = customer_client.post(SETUP, {"code": wrong_totp(device)})

    assert response.status_code == 400
    assert b"not right" in response.content
    assert totp_device_for(customer) is None
    assert not RecoveryCode.objects.filter(user=customer).exists()


def test_confirm_without_a_started_enrolment_does_not_enable(customer_client, customer):
    response = customer_client.post(SETUP, {"code": "123456"})
    assert response.status_code in {200, 400}
    assert totp_device_for(customer) is None


def test_a_new_enrolment_replaces_the_unfinished_one(customer_client, customer):
    customer_client.get(SETUP)
    first = _enrolment_device(customer_client)
    customer_client.get(SETUP)
    second = _enrolment_device(customer_client)
    assert first.pk != second.pk
    assert not TOTPDevice.objects.filter(pk=first.pk).exists()


def test_setup_needs_login(client):
    response = client.get(SETUP)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.fixture
def enabled(customer):
    return enable_2fa(customer)


def test_disable_with_wrong_password_is_refused_ACC_3(customer_client, customer, enabled):
    response = customer_client.post(DISABLE, {"password": "not-my-password-1"})

    assert response.status_code == 400
    assert totp_device_for(customer) is not None
    assert RecoveryCode.objects.filter(user=customer).count() == len(enabled[1])


def test_disable_with_wrong_code_is_refused_ACC_3(customer_client, customer, enabled):
    device, _ = enabled
    response = customer_client.post(DISABLE, {"code": wrong_totp(device)})
    assert response.status_code == 400
    assert totp_device_for(customer) is not None


def test_disable_with_nothing_is_refused(customer_client, customer, enabled):
    assert customer_client.post(DISABLE, {}).status_code == 400
    assert totp_device_for(customer) is not None


def test_disable_with_password(customer_client, customer, enabled):
    response = customer_client.post(DISABLE, {"password": PASSWORD})

    assert response.status_code == 302
    assert totp_device_for(customer) is None
    assert not TOTPDevice.objects.filter(user=customer).exists()
    assert not RecoveryCode.objects.filter(user=customer).exists()
    assert AuditEvent.objects.filter(action=AuditAction.TWOFA_DISABLED, subject=customer).exists()


def test_disable_with_current_code(customer_client, customer, enabled):
    device, _ = enabled
    response = customer_client.post(DISABLE, {"code": totp_now(device)})
    assert response.status_code == 302
    assert totp_device_for(customer) is None


def test_disable_with_recovery_code(customer_client, customer, enabled):
    _, codes = enabled
    assert customer_client.post(DISABLE, {"code": codes[3]}).status_code == 302
    assert totp_device_for(customer) is None


def test_new_recovery_codes_replace_the_old_ones(customer_client, customer, enabled):
    _, old_codes = enabled
    response = customer_client.post("/accounts/2fa/recovery-codes/")
    assert response.status_code == 302
    new_codes = CODE_RE.findall(customer_client.get(TWOFA).content.decode())
    assert len(new_codes) == len(old_codes)
    assert not set(new_codes) & set(old_codes)
    # An old code no longer disables anything.
    assert customer_client.post(DISABLE, {"code": old_codes[0]}).status_code == 400
    assert customer_client.post(DISABLE, {"code": new_codes[0]}).status_code == 302
