"""TOTP enrolment (django-otp), recovery codes, and the second login step."""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditAction, RecoveryCode, User
from accounts.services.audit import audit_log_write
from accounts.services.users import AccountError

_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o/1/l/i look-alikes


def _hash_code(code: str) -> str:
    normalized = code.strip().lower().replace("-", "").replace(" ", "")
    return hmac.new(settings.SECRET_KEY.encode(), normalized.encode(), hashlib.sha256).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def totp_device_for(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """A fresh unconfirmed device; an earlier unfinished enrolment is discarded."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def totp_qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URI as an inline SVG, drawn here: the secret never leaves the server."""
    img = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue().decode()


def recovery_codes_regenerate(*, user: User) -> list[str]:
    codes = [_new_code() for _ in range(settings.RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, code_hash=_hash_code(c)) for c in codes
    )
    return codes


def totp_enrolment_confirm(
    *, actor: User, user: User, device_id: int, token: str, ip_address: str | None
) -> list[str]:
    """Confirm the first code from the app; returns the recovery codes to show once."""
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(pk=device_id, user=user, confirmed=False)
            .first()
        )
        if device is None:
            raise AccountError("This enrolment has expired. Start again.")
        if not device.verify_token(token.strip()):
            raise AccountError(
                "That code is not right. Check the time on your phone and try again."
            )
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = recovery_codes_regenerate(user=user)
        audit_log_write(
            actor=actor, action=AuditAction.TWOFA_ENABLED, subject=user, ip_address=ip_address
        )
    return codes


def second_factor_check(*, user: User, code: str, ip_address: str | None) -> TOTPDevice | None:
    """Verify a TOTP code or an unused recovery code; returns the device to log in with."""
    device = totp_device_for(user)
    if device is None:
        return None
    code = code.strip()
    if code.replace(" ", "").isdigit() and device.verify_token(code.replace(" ", "")):
        return device
    with transaction.atomic():
        used = RecoveryCode.objects.filter(
            user=user, code_hash=_hash_code(code), used_at__isnull=True
        ).update(used_at=timezone.now())
        if used:
            audit_log_write(
                actor=user,
                action=AuditAction.RECOVERY_CODE_USED,
                subject=user,
                ip_address=ip_address,
            )
            return device
    return None


def totp_disable(
    *, actor: User, user: User, code: str = "", password: str = "", ip_address: str | None
) -> None:
    """Turning 2FA off needs a current code (or recovery code) or the password."""
    ok = (bool(password) and user.check_password(password)) or (
        bool(code) and second_factor_check(user=user, code=code, ip_address=ip_address) is not None
    )
    if not ok:
        raise AccountError("Enter a current code from your app, or your password.")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
        audit_log_write(
            actor=actor, action=AuditAction.TWOFA_DISABLED, subject=user, ip_address=ip_address
        )


def recovery_codes_reissue(*, actor: User, user: User, ip_address: str | None) -> list[str]:
    if totp_device_for(user) is None:
        raise AccountError("Turn on two-factor authentication first.")
    with transaction.atomic():
        codes = recovery_codes_regenerate(user=user)
        audit_log_write(
            actor=actor,
            action=AuditAction.RECOVERY_CODES_REGENERATED,
            subject=user,
            ip_address=ip_address,
        )
    return codes
