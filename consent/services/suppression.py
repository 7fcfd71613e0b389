"""The marketing suppression list: erased people's addresses, as keyed hashes only (DSR-3).

After an erasure we no longer know the person, yet must never send them marketing again
(CON-2) should their address come back from an old list or a new sign-up form. The list
holds HMAC-SHA256(SUPPRESSION_KEY, normalised address): it answers "is this address
suppressed?" for someone who has the address, and reveals nothing to anyone else.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

from consent.models import MarketingSuppression


def _key() -> bytes:
    if settings.SUPPRESSION_KEY:
        return settings.SUPPRESSION_KEY.encode()
    # A key of its own, derived from SECRET_KEY (never the bare SECRET_KEY).
    return hmac.new(settings.SECRET_KEY.encode(), b"marketing-suppression", "sha256").digest()


def suppression_hash(email: str) -> str:
    return hmac.new(_key(), email.strip().lower().encode(), hashlib.sha256).hexdigest()


def suppression_add(*, email: str, source: str) -> bool:
    """Put *email* on the list (idempotent); True when it was not there yet."""
    if not email:
        return False
    _, created = MarketingSuppression.objects.get_or_create(
        email_hash=suppression_hash(email), defaults={"source": source[:40]}
    )
    return created


def email_suppressed(email: str) -> bool:
    return (
        bool(email)
        and MarketingSuppression.objects.filter(email_hash=suppression_hash(email)).exists()
    )


def suppression_remove(*, email: str) -> int:
    """A new, confirmed double opt-in by the person lifts it (their fresh consent)."""
    deleted, _ = MarketingSuppression.objects.filter(email_hash=suppression_hash(email)).delete()
    return deleted
