"""Small helpers shared by the accounts tests (no fixtures here: see conftest.py)."""

from __future__ import annotations

import re
import time

from django.core import mail, signing
from django.core.mail import EmailMessage
from django_otp.oath import TOTP, totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.services.twofactor import recovery_codes_regenerate
from tests.factories import PASSWORD

STRONG_PASSWORD = "violet-harbour-lantern-42"


def signup_data(**overrides: str) -> dict[str, str]:
    data = {
        "email": "new.person@example.com",
        "full_name": "New Person",
        "country": "IE",
        "password": STRONG_PASSWORD,
        "password_confirm": STRONG_PASSWORD,
        "age": "13_or_older",
    }
    data.update(overrides)
    return data


def login_data(email: str, password: str = PASSWORD) -> dict[str, str]:
    return {"email": email, "password": password}


def link_path(message: EmailMessage, kind: str) -> str:
    """The site-relative path of the first link of *kind* ("verify", "reset") in a mail."""
    match = re.search(rf"https?://[^/\s]+(/accounts/{kind}/\S+/)", message.body)
    assert match, f"no {kind} link in: {message.body}"
    return match.group(1)


def mails_to(address: str) -> list[EmailMessage]:
    return [m for m in mail.outbox if address in m.to]


def totp_now(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now (or *steps_ahead* time steps later)."""
    device.refresh_from_db()
    if steps_ahead == 0:
        code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    else:
        clock = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        clock.time = time.time() + steps_ahead * device.step
        code = clock.token()
    return f"{code:0{device.digits}d}"


def wrong_totp(device: TOTPDevice) -> str:
    """A 6-digit code that is certainly not accepted in the current tolerance window."""
    valid = {totp_now(device, steps_ahead=d) for d in range(-3, 4)}
    return next(f"{c:06d}" for c in range(123456, 999999) if f"{c:06d}" not in valid)


def enable_2fa(user: User) -> tuple[TOTPDevice, list[str]]:
    """A confirmed TOTP device and fresh recovery codes, as enrolment leaves them."""
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    return device, recovery_codes_regenerate(user=user)


def resign_in_past(token: str, salt: str, seconds_ago: int) -> str:
    """The same signed payload, with a timestamp *seconds_ago* in the past."""
    payload = signing.loads(token, salt=salt)

    class _PastSigner(signing.TimestampSigner):
        def timestamp(self) -> str:
            return signing.b62_encode(int(time.time()) - seconds_ago)

    return _PastSigner(salt=salt).sign_object(payload)
