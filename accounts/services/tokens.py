"""Personal API tokens (django-rest-knox): created after a fresh sign-in, revoked by the owner.

Only the SHA-512 digest is stored; the secret is returned once, at creation. Creating and
revoking are audited in the same transaction as the change (ACC-3).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from accounts.models import ApiToken, AuditAction, User
from accounts.selectors import api_tokens_for_user
from accounts.services.audit import audit_log_write

NAME_MAX_LENGTH = 100


class ApiTokenRefused(Exception):
    """A token that cannot be made as asked; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiTokenLimitReached(ApiTokenRefused):
    """The user already has TOKEN_LIMIT_PER_USER live tokens."""


def api_token_create(*, user: User, name: str, ip_address: str | None) -> tuple[ApiToken, str]:
    """A new token for *user*: the row and the secret (show it once, it is not kept)."""
    if not user.is_active:
        raise ApiTokenRefused("This account cannot use the API.")
    name = name.strip()[:NAME_MAX_LENGTH]
    limit = settings.REST_KNOX.get("TOKEN_LIMIT_PER_USER")
    with transaction.atomic():
        # The user row is the lock: two concurrent creations cannot both pass the limit.
        User.objects.select_for_update().filter(pk=user.pk).first()
        if limit is not None and api_tokens_for_user(user=user).count() >= limit:
            raise ApiTokenLimitReached(
                f"You already have {limit} API tokens, the most allowed. "
                "Revoke one you no longer use, then try again."
            )
        token, secret = ApiToken.objects.create(user=user, name=name)
        audit_log_write(
            actor=user,
            action=AuditAction.API_TOKEN_CREATED,
            subject=user,
            ip_address=ip_address,
            detail={"token_key": token.token_key, "name": name},
        )
    return token, secret


def api_token_revoke(*, actor: User, token: ApiToken, ip_address: str | None) -> None:
    """Delete *token* at once; the next request with it is refused."""
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk).delete()
        audit_log_write(
            actor=actor,
            action=AuditAction.API_TOKEN_REVOKED,
            subject=token.user,
            ip_address=ip_address,
            detail={"token_key": token.token_key, "name": token.name},
        )


def api_tokens_revoke_all(
    *, user: User, actor: User | None, ip_address: str | None, why: str
) -> int:
    """End every API token of *user* (a password change or reset: as for sessions)."""
    with transaction.atomic():
        count, _ = ApiToken.objects.filter(user=user).delete()
        if count:
            audit_log_write(
                actor=actor,
                action=AuditAction.API_TOKEN_REVOKED,
                subject=user,
                ip_address=ip_address,
                detail={"tokens": count, "why": why},
            )
    return count
