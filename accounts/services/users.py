"""Sign-up, verification, profile, email and password changes."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import tasks
from accounts.models import PROFILE_FIELDS, AuditAction, User, normalize_email
from accounts.services.audit import audit_log_write
from accounts.services.tokens import api_tokens_revoke_all
from accounts.tokens import VerificationError, read_verification_token
from common.imaging import ImageLimits, sanitize_image


class AccountError(Exception):
    """A request the account rules refuse; message is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def user_register(
    *, email: str, password: str, full_name: str, country: str, ip_address: str | None
) -> User:
    """Create an unverified customer and send the verification link.

    The caller has already refused anyone under 13: nothing about them reaches here.
    """
    email = normalize_email(email)
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email,
                password,
                full_name=full_name.strip(),
                country=country,
                age_confirmed_at=timezone.now(),
            )
            audit_log_write(
                actor=user, action=AuditAction.SIGNUP, subject=user, ip_address=ip_address
            )
            transaction.on_commit(lambda: tasks.send_verification_email.delay(user.pk))
    except IntegrityError as exc:
        raise AccountError("An account with this email address already exists.") from exc
    return user


def user_verify_email(*, token: str, ip_address: str | None) -> User:
    """Apply a verification link: first verification or a change of address."""
    claim = read_verification_token(token)
    user = claim.user
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if claim.email == user.email and user.email_verified_at is None:
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at", "updated_at"])
            audit_log_write(
                actor=user, action=AuditAction.EMAIL_VERIFIED, subject=user, ip_address=ip_address
            )
        elif claim.email == user.pending_email and user.pending_email:
            if User.objects.filter(email=claim.email).exclude(pk=user.pk).exists():
                raise VerificationError("Another account now uses this email address.")
            old = user.email
            user.email = user.pending_email
            user.pending_email = ""
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email", "pending_email", "email_verified_at", "updated_at"])
            audit_log_write(
                actor=user,
                action=AuditAction.EMAIL_CHANGED,
                subject=user,
                ip_address=ip_address,
                detail={"old_domain": old.rsplit("@", 1)[-1]},
            )
        else:
            raise VerificationError("This verification link has already been used.")
    return user


def user_resend_verification(*, user: User) -> None:
    if user.email_verified_at is None or user.pending_email:
        transaction.on_commit(lambda: tasks.send_verification_email.delay(user.pk))


def user_update_profile(
    *, actor: User, user: User, data: dict[str, Any], ip_address: str | None
) -> list[str]:
    changed = [f for f in PROFILE_FIELDS if f in data and getattr(user, f) != data[f]]
    if not changed:
        return []
    with transaction.atomic():
        for field in changed:
            setattr(user, field, data[field])
        user.save(update_fields=[*changed, "updated_at"])
        audit_log_write(
            actor=actor,
            action=AuditAction.PROFILE_UPDATED,
            subject=user,
            ip_address=ip_address,
            detail={"fields": changed},
        )
    return changed


PROFILE_IMAGE_LIMITS = ImageLimits(
    max_bytes=settings.PROFILE_IMAGE_MAX_BYTES,
    max_pixels=settings.PROFILE_IMAGE_MAX_PIXELS,
    max_side=settings.PROFILE_IMAGE_MAX_SIDE,
)


def user_set_profile_image(*, actor: User, user: User, upload: Any, ip_address: str | None) -> None:
    """Validate, strip metadata, store under a random key, then drop the old file."""
    clean = sanitize_image(upload, PROFILE_IMAGE_LIMITS, fit_to=settings.PROFILE_IMAGE_OUTPUT_SIDE)
    key = f"profile-images/{secrets.token_hex(16)}.{clean.extension}"
    stored = default_storage.save(key, ContentFile(clean.content))
    old = user.profile_image.name if user.profile_image else ""
    try:
        with transaction.atomic():
            user.profile_image.name = stored
            user.save(update_fields=["profile_image", "updated_at"])
            audit_log_write(
                actor=actor,
                action=AuditAction.PROFILE_UPDATED,
                subject=user,
                ip_address=ip_address,
                detail={"fields": ["profile_image"]},
            )
    except Exception:
        default_storage.delete(stored)
        raise
    if old:
        transaction.on_commit(lambda: default_storage.delete(old))


def user_remove_profile_image(*, actor: User, user: User, ip_address: str | None) -> None:
    old = user.profile_image.name if user.profile_image else ""
    if not old:
        return
    with transaction.atomic():
        user.profile_image.name = ""
        user.save(update_fields=["profile_image", "updated_at"])
        audit_log_write(
            actor=actor,
            action=AuditAction.PROFILE_UPDATED,
            subject=user,
            ip_address=ip_address,
            detail={"fields": ["profile_image"]},
        )
    default_storage.delete(old)


def user_request_email_change(
    *, actor: User, user: User, new_email: str, ip_address: str | None
) -> None:
    new_email = normalize_email(new_email)
    if new_email == user.email:
        raise AccountError("This is already your email address.")
    if User.objects.filter(email=new_email).exists():
        # Same wording as success would leak nothing, but the user is logged in and
        # proved the password; telling them is more useful than silence.
        raise AccountError("Another account uses this email address.")
    with transaction.atomic():
        user.pending_email = new_email
        user.save(update_fields=["pending_email", "updated_at"])
        audit_log_write(
            actor=actor,
            action=AuditAction.EMAIL_CHANGE_REQUESTED,
            subject=user,
            ip_address=ip_address,
        )
        transaction.on_commit(lambda: tasks.send_verification_email.delay(user.pk))
        transaction.on_commit(lambda: tasks.send_email_change_notice.delay(user.pk))


@transaction.atomic
def user_password_changed(*, user: User, ip_address: str | None, reset: bool = False) -> None:
    """Record a password change (the form has set it; other sessions end with the hash).

    API tokens end too: whoever knew the old password may have made one, and changing it
    is how a customer shuts them out.
    """
    audit_log_write(
        actor=user,
        action=AuditAction.PASSWORD_RESET if reset else AuditAction.PASSWORD_CHANGED,
        subject=user,
        ip_address=ip_address,
    )
    api_tokens_revoke_all(
        user=user,
        actor=user,
        ip_address=ip_address,
        why="password reset" if reset else "password changed",
    )


def password_reset_request(*, email: str, ip_address: str | None) -> None:
    """Send a reset link if such an active account exists.

    The caller answers the same either way, so nothing is learnt about who has an account.
    """
    user = User.objects.filter(email=normalize_email(email), is_active=True).first()
    if user is None or not user.has_usable_password():
        return
    with transaction.atomic():
        audit_log_write(
            actor=None,
            action=AuditAction.PASSWORD_RESET_REQUESTED,
            subject=user,
            ip_address=ip_address,
        )
        transaction.on_commit(lambda: tasks.send_password_reset_email.delay(user.pk))


def user_purge_unverified(*, now: Any = None) -> int:
    """Remove accounts never verified within UNVERIFIED_ACCOUNT_DAYS (ACC-1).

    The rule itself lives in the registry (accounts/privacy.py); this runs just that rule.
    """
    from dsr.registry import registry
    from dsr.services.retention import retention_run_rule

    entry = registry.get("accounts.User")
    assert entry is not None
    return retention_run_rule(entry=entry, now=now).rows_removed
