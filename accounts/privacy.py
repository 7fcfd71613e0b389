"""What the accounts app holds about people, and why (ACC-6).

Every personal field of the app is listed here with its data category and purpose.
The privacy-core registry (issue: privacy core) builds on these declarations; a test
checks that every concrete field of User is either listed here or is account plumbing.
"""

from __future__ import annotations

from collections.abc import Callable

# field -> (data category, purpose)
USER_FIELDS: dict[str, tuple[str, str]] = {
    "email": ("contact", "Log in, order confirmations and delivery updates"),
    "full_name": ("identity", "Address the customer and put on invoices"),
    "phone": ("contact", "Optional: reach the customer about an order"),
    "country": ("identity", "Taxes, prices and passport photo defaults"),
    "company_name": ("identity", "Optional: invoices to a business"),
    "website": ("identity", "Optional: business customers' profile"),
    "street_address": ("contact", "Optional: invoice address"),
    "city": ("contact", "Optional: invoice address"),
    "region": ("contact", "Optional: invoice address"),
    "postal_code": ("contact", "Optional: invoice address"),
    "preferred_currency": ("preferences", "Show prices in the customer's currency"),
    "vat_id": ("identity", "Optional: reverse-charge invoices for businesses"),
    "profile_image": ("image", "Optional: shown to the customer on their own pages"),
    "age_confirmed_at": ("account", "Proof that the person confirmed being 13 or older"),
    "email_verified_at": ("account", "Only verified addresses may order"),
    "pending_email": ("contact", "A new address waiting for verification"),
    "password": ("credentials", "Log in (stored only as an Argon2id hash)"),
    "last_login": ("account", "Security: show account activity"),
}

# Fields that hold no personal data about the person themselves.
USER_PLUMBING = frozenset(
    {"id", "is_active", "is_staff", "is_superuser", "created_at", "updated_at"}
)


# --- Registry declarations (discovered at start-up by dsr.apps) --------------------------------
def _register() -> None:
    from datetime import timedelta

    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.conf import settings
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
    from django.contrib.sessions.models import Session
    from django.db.models import Q
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import (
        ApiToken,
        AuditEvent,
        IdempotencyKey,
        Notification,
        RecoveryCode,
        RequestLog,
        User,
    )
    from dsr.registry import (
        Anonymise,
        Category,
        Delete,
        PersonalData,
        Retention,
        erased_email,
        registry,
    )

    def days(setting: str) -> Callable[[], timedelta]:
        # Read at run time, so a changed setting changes the rule (and the privacy page).
        return lambda: timedelta(days=getattr(settings, setting))

    registry.register(
        PersonalData(
            model=User,
            subject="",
            purpose="account",
            fields={name: cat for name, (cat, _) in USER_FIELDS.items()},
            export=tuple(n for n in USER_FIELDS if n != "password"),
            file_fields=("profile_image",),
            # The row stays (orders and invoices kept for the law point at it) with nothing
            # of the person: a unique placeholder address, no password, no profile.
            # email_verified_at stays set so the unverified-account purge never picks the
            # erased row (orders PROTECT it).
            erasure=Anonymise(
                {
                    "email": erased_email,
                    "password": UNUSABLE_PASSWORD_PREFIX,
                    "country": "",
                    "preferred_currency": "",
                    "age_confirmed_at": None,
                    "last_login": None,
                    "full_name": "",
                    "phone": "",
                    "company_name": "",
                    "website": "",
                    "street_address": "",
                    "city": "",
                    "region": "",
                    "postal_code": "",
                    "vat_id": "",
                    "pending_email": "",
                    "profile_image": "",
                    "is_active": False,
                }
            ),
            retention=Retention(
                clock="created_at",
                after="sign-up",
                period=days("UNVERIFIED_ACCOUNT_DAYS"),
                filter=Q(email_verified_at__isnull=True, is_staff=False),
                description="only accounts whose email address was never confirmed",
            ),
            description="Customer and staff accounts.",
        )
    )
    registry.register(
        PersonalData(
            model=Notification,
            subject="user",
            purpose="communication",
            fields={
                "title": Category.CONTENT,
                "body": Category.CONTENT,
                "read_at": Category.ACCOUNT,
            },
            export=("created_at", "title", "body", "link", "read_at"),
            erasure=Delete(),
            retention=Retention(
                clock="created_at", after="it was sent", period=days("NOTIFICATION_RETENTION_DAYS")
            ),
            description="In-site notifications.",
        )
    )
    registry.register(
        PersonalData(
            model=AuditEvent,
            subject="subject",
            purpose="security",
            fields={
                "ip_address": Category.NETWORK,
                "action": Category.SECURITY,
                "detail": Category.SECURITY,
            },
            export=("created_at", "action", "ip_address"),
            erasure=Anonymise({"ip_address": None, "detail": {}}),
            retention=Retention(
                clock="created_at", after="the event", period=days("AUDIT_RETENTION_DAYS")
            ),
            description="Security and staff events about an account.",
        )
    )
    registry.register(
        PersonalData(
            model=RecoveryCode,
            subject="user",
            purpose="security",
            fields={"code_hash": Category.CREDENTIALS},
            export=("created_at", "used_at"),
            erasure=Delete(),
            description="Two-factor recovery codes (keyed hashes).",
        )
    )
    registry.register(
        PersonalData(
            model=TOTPDevice,
            subject="user",
            purpose="security",
            fields={"key": Category.CREDENTIALS, "name": Category.ACCOUNT},
            export=("name", "confirmed"),
            erasure=Delete(),
            description="Two-factor authenticator apps.",
        )
    )
    registry.register(
        PersonalData(
            model=RequestLog,
            subject="user",
            purpose="operations",
            fields={
                "ip_address": Category.NETWORK,
                "time": Category.USAGE,
                "path": Category.USAGE,
                "browser": Category.NETWORK,
                "os": Category.NETWORK,
                "referrer": Category.USAGE,
                "language": Category.NETWORK,
                "status": Category.USAGE,
                "bytes_sent": Category.USAGE,
                "method": Category.USAGE,
            },
            export=(
                "time",
                "ip_address",
                "method",
                "path",
                "status",
                "bytes_sent",
                "browser",
                "os",
                "referrer",
                "language",
            ),
            erasure=Delete(),
            retention=Retention(
                clock="time", after="the request", period=days("REQUEST_LOG_RETENTION_DAYS")
            ),
            description="Server request log (LOG-1); only daily counts without addresses survive.",
        )
    )
    registry.register(
        PersonalData(
            model=Session,
            purpose="account",
            fields={"session_data": Category.ACCOUNT},
            subject_note="The session data holds the user id; every session of a user ends when "
            "the password hash changes (password change, erasure).",
            export=(),
            erasure=Delete(),
            retention=Retention(
                clock="expire_date",
                after="expiry",
                period=lambda: timedelta(0),
            ),
            description="Login sessions.",
        )
    )
    for model, label in (
        (AccessAttempt, "Failed logins being counted for the lockout"),
        (AccessLog, "Successful logins"),
        (AccessFailureLog, "Failed logins"),
    ):
        registry.register(
            PersonalData(
                model=model,
                subject_email="username",
                purpose="security",
                fields={
                    "username": Category.CONTACT,
                    "ip_address": Category.NETWORK,
                    "user_agent": Category.NETWORK,
                },
                export=("username", "ip_address", "attempt_time"),
                erasure=Delete(),
                retention=Retention(
                    clock="attempt_time",
                    after="the attempt",
                    period=days("REQUEST_LOG_RETENTION_DAYS"),
                ),
                description=label + " (django-axes).",
            )
        )
    registry.register(
        PersonalData(
            model=LogEntry,
            subject="user",
            purpose="security",
            fields={"object_repr": Category.IDENTITY, "change_message": Category.CONTENT},
            export=("action_time", "object_repr", "change_message"),
            erasure=Anonymise({"object_repr": "", "change_message": ""}),
            retention=Retention(
                clock="action_time",
                after="the staff action",
                period=days("ADMIN_LOG_RETENTION_DAYS"),
            ),
            description="Django admin history of staff actions.",
        )
    )
    registry.register(
        PersonalData(
            model=ApiToken,
            subject="user",
            purpose="account",
            fields={
                "digest": Category.CREDENTIALS,
                "name": Category.ACCOUNT,
                "last_used_at": Category.USAGE,
            },
            export=("token_key", "name", "created", "expiry", "last_used_at"),
            erasure=Delete(),
            retention=Retention(clock="expiry", after="expiry", period=lambda: timedelta(0)),
            description="Personal API tokens (SHA-512 digests; the token itself is never kept).",
        )
    )
    registry.register(
        PersonalData(
            model=IdempotencyKey,
            subject="user",
            purpose="account",
            fields={"response": Category.CONTENT},
            export=("created_at", "scope", "response"),
            erasure=Delete(),
            retention=Retention(
                clock="created_at",
                after="the request",
                period=lambda: timedelta(hours=settings.API_IDEMPOTENCY_HOURS),
            ),
            description="The first answer to an API request sent with an Idempotency-Key.",
        )
    )


_register()
