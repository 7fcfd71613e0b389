from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_countries.fields import CountryField
from knox.models import AbstractAuthToken

from accounts.choices import CURRENCY_CHOICES
from common.fields import personal
from common.maintenance import maintenance_allowed
from common.models import TimeStampedModel


def normalize_email(value: str) -> str:
    """One account per address: case and surrounding whitespace never make a second one."""
    return (value or "").strip().lower()


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email=normalize_email(username or ""))

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("email_verified_at", timezone.now())
        extra.setdefault("age_confirmed_at", timezone.now())
        return self.create_user(email, password, **extra)


def profile_image_key(instance: User, filename: str) -> str:
    # Never the client's filename: the service passes a random key.
    return filename


# Everything the person edits on "My profile" (and staff in the admin), in page order.
PROFILE_FIELDS = (
    "full_name",
    "phone",
    "country",
    "company_name",
    "website",
    "street_address",
    "city",
    "region",
    "postal_code",
    "preferred_currency",
    "vat_id",
)


class User(AbstractBaseUser, PermissionsMixin, TimeStampedModel):  # type: ignore[django-manager-missing]
    """A customer or staff member.

    Each field's purpose is declared in accounts/privacy.py (ACC-6); a field with no
    declared purpose does not belong here.
    """

    # Sign-up (ACC-1): what an order needs.
    email = models.EmailField("email address", max_length=254, unique=True)
    full_name = models.CharField(max_length=150)
    phone = models.CharField(max_length=32, blank=True)
    country = CountryField()
    # Optional profile (ACC-1): invoices, currency, personalisation.
    company_name = models.CharField(max_length=150, blank=True)
    website = models.URLField(max_length=200, blank=True)
    street_address = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField("state/region", max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    preferred_currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, blank=True)
    vat_id = models.CharField("VAT ID", max_length=32, blank=True)
    profile_image = models.FileField(upload_to=profile_image_key, blank=True, max_length=200)
    # Account state. Only the fact "13 or older" and when it was confirmed: no birth date (ACC-5).
    age_confirmed_at = models.DateTimeField(null=True, blank=True)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    pending_email = models.EmailField(max_length=254, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name", "country"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]
        indexes = [models.Index(fields=["email_verified_at", "created_at"])]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)

    @property
    def is_email_verified(self) -> bool:
        return self.email_verified_at is not None

    def get_full_name(self) -> str:
        return self.full_name

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class Notification(TimeStampedModel):
    """An in-site message to one user; other apps create them via notification_create."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The header's unread count runs on every page: keep it an index-only lookup.
            models.Index(
                fields=["user"], name="notif_unread_idx", condition=models.Q(read_at__isnull=True)
            ),
            models.Index(fields=["user", "-created_at"], name="notif_user_created_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class AuditAction(models.TextChoices):
    SIGNUP = "signup", "Signed up"
    EMAIL_VERIFIED = "email_verified", "Email verified"
    LOGIN = "login", "Logged in"
    LOGIN_FAILED = "login_failed", "Failed login"
    LOCKOUT = "lockout", "Locked out"
    LOGOUT = "logout", "Logged out"
    TWOFA_ENABLED = "2fa_enabled", "2FA enabled"
    TWOFA_DISABLED = "2fa_disabled", "2FA disabled"
    RECOVERY_CODE_USED = "recovery_code_used", "Recovery code used"
    RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated", "Recovery codes regenerated"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    PASSWORD_RESET_REQUESTED = "password_reset_requested", "Password reset requested"
    PASSWORD_RESET = "password_reset", "Password reset"
    EMAIL_CHANGE_REQUESTED = "email_change_requested", "Email change requested"
    EMAIL_CHANGED = "email_changed", "Email changed"
    PROFILE_UPDATED = "profile_updated", "Profile updated"
    STAFF_USER_EDIT = "staff_user_edit", "Staff edited a user"
    ACCOUNT_PURGED = "account_purged", "Unverified account removed"
    REQUEST_LOG_EXPORT = "request_log_export", "Request log exported"
    ORDER_STATUS = "order_status", "Order status changed"
    ORDER_ASSIGNED = "order_assigned", "Retoucher assigned"
    PAYMENT = "payment", "Payment recorded"
    INVOICE_ISSUED = "invoice_issued", "Invoice issued"
    PHOTO_UPLOADED = "photo_uploaded", "Photos uploaded"
    MALWARE_REJECTED = "malware_rejected", "Upload rejected: malware"
    IMAGE_ACCESSED = "image_accessed", "Staff opened a customer image"
    RESULT_UPLOADED = "result_uploaded", "Result uploaded"
    CONSENT_RECORDED = "consent_recorded", "Staff recorded a consent on a written request"
    CAMPAIGN_TEST_SENT = "campaign_test_sent", "Campaign test-sent to staff"
    CAMPAIGN_STARTED = "campaign_started", "Campaign sending started"
    CAMPAIGN_CANCELLED = "campaign_cancelled", "Campaign cancelled"
    AUDIENCE_BUILT = "audience_built", "Marketing audience built"
    POLICY_PUBLISHED = "policy_published", "Privacy policy version published"
    DISCLOSURE_RECORDED = "disclosure_recorded", "Disclosure to a third party recorded"
    PORTFOLIO_PUBLISHED = "portfolio_published", "Image published to the portfolio"
    PORTFOLIO_UNPUBLISHED = "portfolio_unpublished", "Image removed from the portfolio"
    DSR_RECEIVED = "dsr_received", "Data-subject request received"
    DSR_STATUS = "dsr_status", "Data-subject request status changed"
    DSR_ASSIGNED = "dsr_assigned", "Data-subject request assigned"
    DSR_EXTENDED = "dsr_extended", "Data-subject request deadline extended"
    DSR_EXPORT_DOWNLOADED = "dsr_export_downloaded", "Data export downloaded"
    DSR_ERASED = "dsr_erased", "Personal data erased"
    DSR_RECTIFIED = "dsr_rectified", "Personal data rectified"
    DSR_RESTRICTED = "dsr_restricted", "Processing restricted"
    DSR_RESTRICTION_LIFTED = "dsr_restriction_lifted", "Processing restriction lifted"
    DSR_CHILD_REPORTED = "dsr_child_reported", "Account reported as a child's"
    BREACH_DECLARED = "breach_declared", "Breach incident declared"
    BREACH_CONFIRMED = "breach_confirmed", "Breach confirmed and its scope frozen"
    BREACH_UPDATED = "breach_updated", "Breach incident updated"
    BREACH_AUTHORITY_NOTIFIED = "breach_authority_notified", "Breach notified to the authority"
    BREACH_NOTIFYING = "breach_notifying", "Breach notification of the affected started"
    BREACH_NOTIFIED = "breach_notified", "Every affected person notified of a breach"
    BREACH_ALERT = "breach_alert", "Breach notification deadline alert"
    API_TOKEN_CREATED = "api_token_created", "API token created"
    API_TOKEN_REVOKED = "api_token_revoked", "API token revoked"


class AuditQuerySet(models.QuerySet["AuditEvent"]):
    """Append-only, except for the retention engine and erasure (privacy_maintenance)."""

    def update(self, **kwargs: Any) -> int:
        if not maintenance_allowed():
            raise PermissionError("The audit log is append-only")
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        if not maintenance_allowed():
            raise PermissionError("The audit log is append-only")
        return super().delete()


class AuditEvent(models.Model):
    """Append-only record of security and staff events.

    Written by audit_log_write inside the same transaction as the change it records, so
    a change without its audit row (or the reverse) cannot be committed.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=40, choices=AuditAction.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_actions",
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("The audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("The audit log is append-only")


class RecoveryCode(models.Model):
    """A single-use 2FA recovery code, stored only as a keyed hash."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes"
    )
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "code_hash"], name="recovery_code_unique"),
        ]

    def __str__(self) -> str:
        return f"recovery code of user {self.user_id}"


class RequestLog(models.Model):
    """One line per request (LOG-1), kept at most REQUEST_LOG_RETENTION_DAYS (LOG-2).

    Written in batches by a worker from a Redis buffer, never in the request itself.
    """

    request_id = models.UUIDField(unique=True)  # makes a replayed batch harmless
    time = models.DateTimeField(db_index=True)
    ip_address = personal(models.GenericIPAddressField(null=True, blank=True))
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    # No database constraint: the log must accept a line for a user being erased concurrently.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
    )
    status = models.PositiveSmallIntegerField()
    bytes_sent = models.BigIntegerField(default=0)
    browser = models.CharField(max_length=50, blank=True)
    os = models.CharField("operating system", max_length=50, blank=True)
    referrer = models.CharField(max_length=500, blank=True)
    language = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["ip_address", "time"], name="reqlog_ip_time_idx")]
        permissions = [("export_requestlog", "Can export request-log lines of an incident")]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.method} {self.path} {self.status}"


class DailyUsage(models.Model):
    """Aggregated, non-identifying statistics that outlive the request log (LOG-3)."""

    day = models.DateField()
    path_group = models.CharField(max_length=50)
    status_class = models.CharField(max_length=3)
    browser = models.CharField(max_length=50)
    requests = models.PositiveIntegerField()
    bytes_sent = models.BigIntegerField()

    class Meta:
        ordering = ["-day", "path_group"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "path_group", "status_class", "browser"], name="daily_usage_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.path_group} {self.status_class}: {self.requests}"


class ApiToken(AbstractAuthToken):
    """A personal API token (django-rest-knox): only its SHA-512 digest is stored.

    The first characters (``token_key``) are not secret: they name the token in lists
    and URLs, so a customer can tell tokens apart and revoke one without the secret.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.token_key}… ({self.name or 'API token'})"


class IdempotencyKey(models.Model):
    """The first answer to a POST sent with an Idempotency-Key, replayed on a retry.

    Unique per user and key: two concurrent retries cannot both create (the second waits
    on the unique index, then replays). Kept API_IDEMPOTENCY_HOURS, then deleted.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotency_keys"
    )
    key = models.CharField(max_length=100)
    scope = models.CharField(max_length=100)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(default=0)
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
