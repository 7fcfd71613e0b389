"""Signed links of marketing email: the double opt-in confirmation and the unsubscribe link.

Each has its own salt, so one kind of token can never be replayed as the other. Both
carry a digest of the address they were made for, so a link keeps its meaning only for
the subscription it was sent to; the confirmation link also carries the request time, so
a newer request (or an unsubscribe in between) makes an old confirmation link useless.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core import signing

from consent.models import Subscriber

CONFIRM_SALT = "consent.newsletter-confirm"
UNSUBSCRIBE_SALT = "consent.newsletter-unsubscribe"


class LinkError(Exception):
    """A link that is forged, altered, expired or no longer valid; ``message`` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _address_digest(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:12]


def _stamp(when: datetime | None) -> str:
    return f"{when.timestamp():.6f}" if when is not None else "-"


# --- Confirmation (double opt-in) ---------------------------------------------------------


def confirmation_token(subscriber: Subscriber) -> str:
    digest = _address_digest(subscriber.email)
    payload = f"{subscriber.pk}.{digest}.{_stamp(subscriber.requested_at)}"
    return signing.TimestampSigner(salt=CONFIRM_SALT).sign(payload)


@dataclass(frozen=True)
class ConfirmationClaim:
    subscriber: Subscriber


def confirmation_read(token: str) -> ConfirmationClaim:
    """The subscription a confirmation link names; LinkError if it cannot be used."""
    max_age = settings.MARKETING_CONFIRM_DAYS * 24 * 3600
    try:
        payload = signing.TimestampSigner(salt=CONFIRM_SALT).unsign(token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise LinkError(
            "This confirmation link has expired. Subscribe again to get a new one."
        ) from exc
    except signing.BadSignature as exc:
        raise LinkError("This confirmation link is not valid.") from exc
    parts = payload.split(".", 2)
    if len(parts) != 3 or not parts[0].isdigit():
        raise LinkError("This confirmation link is not valid.")
    subscriber = Subscriber.objects.filter(pk=int(parts[0])).select_related("wording").first()
    if (
        subscriber is None
        or _address_digest(subscriber.email) != parts[1]
        or _stamp(subscriber.requested_at) != parts[2]
    ):
        raise LinkError(
            "This confirmation link is no longer valid: it was replaced by a newer one, or "
            "the subscription was withdrawn. Subscribe again to get a new link."
        )
    return ConfirmationClaim(subscriber=subscriber)


# --- Unsubscribe (CON-1, CON-2) -----------------------------------------------------------


class UnsubscribeSigner:
    """Makes many unsubscribe tokens cheaply (one per message of a campaign)."""

    def __init__(self) -> None:
        self.signer = signing.TimestampSigner(salt=UNSUBSCRIBE_SALT)

    def token(self, *, subscriber_id: int, email: str) -> str:
        return self.signer.sign(f"{subscriber_id}.{_address_digest(email)}")


def unsubscribe_token(*, subscriber_id: int, email: str) -> str:
    return UnsubscribeSigner().token(subscriber_id=subscriber_id, email=email)


@dataclass(frozen=True)
class UnsubscribeClaim:
    subscriber_id: int
    address_digest: str

    def matches(self, email: str) -> bool:
        return _address_digest(email) == self.address_digest


def unsubscribe_read(token: str) -> UnsubscribeClaim:
    """What an unsubscribe link names; it works for UNSUBSCRIBE_LINK_DAYS after sending."""
    max_age = settings.UNSUBSCRIBE_LINK_DAYS * 24 * 3600
    try:
        payload = signing.TimestampSigner(salt=UNSUBSCRIBE_SALT).unsign(token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise LinkError(
            "This unsubscribe link has expired. Use the link in a more recent newsletter, "
            "or unsubscribe on your account's privacy page."
        ) from exc
    except signing.BadSignature as exc:
        raise LinkError("This unsubscribe link is not valid.") from exc
    sid, _, digest = payload.partition(".")
    if not sid.isdigit() or not digest:
        raise LinkError("This unsubscribe link is not valid.")
    return UnsubscribeClaim(subscriber_id=int(sid), address_digest=digest)
