"""A scoped permission for the privacy machinery to change append-only tables.

The audit log refuses updates and deletes; only the retention engine and erasure
(anonymising old rows as their declarations say) may do it, inside this context.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_allowed: ContextVar[bool] = ContextVar("privacy_maintenance", default=False)


@contextmanager
def privacy_maintenance() -> Iterator[None]:
    token = _allowed.set(True)
    try:
        yield
    finally:
        _allowed.reset(token)


def maintenance_allowed() -> bool:
    return _allowed.get()
