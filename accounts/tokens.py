"""Signed, expiring, single-use email-verification links.

The payload carries a digest of the state the link was issued for (address being
verified, current verification time). Once the link has done its job the state changes,
so the same link is refused as "already used" without storing anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from accounts.models import User

_SALT = "accounts.email-verification"


class VerificationError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _state(user: User, email: str) -> str:
    raw = f"{user.pk}|{email}|{user.email}|{user.email_verified_at}|{user.pending_email}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def make_verification_token(user: User, email: str) -> str:
    return signing.dumps({"u": user.pk, "e": email, "s": _state(user, email)}, salt=_SALT)


@dataclass(frozen=True)
class VerificationClaim:
    user: User
    email: str


def read_verification_token(token: str) -> VerificationClaim:
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.EMAIL_VERIFICATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise VerificationError(
            "This verification link has expired. Log in and ask for a new one."
        ) from exc
    except signing.BadSignature as exc:
        raise VerificationError("This verification link is not valid.") from exc
    if not isinstance(data, dict) or not {"u", "e", "s"} <= data.keys():
        raise VerificationError("This verification link is not valid.")
    user = User.objects.filter(pk=data["u"], is_active=True).first()
    if user is None or _state(user, data["e"]) != data["s"]:
        raise VerificationError(
            "This verification link has already been used or has been replaced by a newer one."
        )
    return VerificationClaim(user=user, email=data["e"])
