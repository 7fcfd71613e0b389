"""Intake from the account page and the public form (with email verification)."""

from __future__ import annotations

from datetime import datetime


def tickets_expire_unverified(*, now: datetime) -> int:
    raise NotImplementedError
