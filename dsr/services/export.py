"""Access and portability: the registry-driven, streamed export archive (DSR-1)."""

from __future__ import annotations

from datetime import datetime

from accounts.models import User
from dsr.models import Ticket


def export_start(*, ticket: Ticket, actor: User | None) -> None:
    raise NotImplementedError


def export_build(*, archive_id: int) -> str:
    raise NotImplementedError


def export_resume(*, now: datetime) -> int:
    raise NotImplementedError


def export_download_url(*, ticket: Ticket) -> str:
    raise NotImplementedError
