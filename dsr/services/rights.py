"""The other rights: rectification, restriction, objection, withdrawal of consent,
automated decisions, Shine the Light (DSR-1, DSR-4, CON-2)."""

from __future__ import annotations

from accounts.models import User
from dsr.models import Ticket


def rights_start(*, ticket: Ticket, actor: User | None) -> None:
    raise NotImplementedError
