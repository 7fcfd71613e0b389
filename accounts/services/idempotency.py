"""Idempotency-Key for API creates: a retried POST replays the first answer, creates nothing.

The key row is inserted in the same transaction as what the request creates. A concurrent
retry blocks on the unique index until the first commits, then finds the row and replays
it; if the first fails, its row rolls back with everything else and the retry runs anew.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import IdempotencyKey, User

KEY_MAX = 100


class IdempotencyRefused(Exception):
    def __init__(self, message: str, *, reused: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.reused = reused


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]
    replayed: bool


def request_fingerprint(*parts: Any) -> str:
    """A digest of what the request asked for (method, path, body, file digests)."""
    raw = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def _check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > KEY_MAX or not key.isprintable():
        raise IdempotencyRefused(f"Idempotency-Key must be 1 to {KEY_MAX} printable characters.")
    return key


def _replay(row: IdempotencyKey, *, scope: str, fingerprint: str) -> Outcome:
    if row.scope != scope or row.fingerprint != fingerprint:
        raise IdempotencyRefused(
            "This Idempotency-Key was already used for a different request; use a new key.",
            reused=True,
        )
    return Outcome(status_code=row.status_code, body=row.response, replayed=True)


def idempotent_run(
    *,
    actor: User,
    key: str,
    scope: str,
    fingerprint: str,
    run: Callable[[], tuple[int, dict[str, Any]]],
) -> Outcome:
    """Run *run* once per (actor, key); later calls with the same request replay its answer."""
    key = _check_key(key)
    existing = IdempotencyKey.objects.filter(user=actor, key=key).first()
    if existing is not None:
        return _replay(existing, scope=scope, fingerprint=fingerprint)
    try:
        with transaction.atomic():
            row = IdempotencyKey.objects.create(
                user=actor, key=key, scope=scope, fingerprint=fingerprint
            )
            status_code, body = run()
            row.status_code, row.response = status_code, body
            row.save(update_fields=["status_code", "response"])
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        first = IdempotencyKey.objects.filter(user=actor, key=key).first()
        if first is None:
            raise  # another constraint failed inside *run*: not ours to hide
        return _replay(first, scope=scope, fingerprint=fingerprint)
    return Outcome(status_code=status_code, body=body, replayed=False)
