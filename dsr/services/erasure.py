"""Erasure: registry-driven, idempotent, resumable steps with a receipt (DSR-3, ORD-4)."""

from __future__ import annotations

from datetime import datetime

from accounts.models import User
from dsr.models import Ticket


def erasure_start(*, ticket: Ticket, actor: User | None) -> None:
    raise NotImplementedError


def erasure_run(*, ticket_id: int) -> str:
    raise NotImplementedError


def erasure_resume(*, now: datetime) -> int:
    raise NotImplementedError
