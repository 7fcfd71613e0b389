"""Deadline alerts for privacy officers (DSR-2)."""

from __future__ import annotations

from datetime import datetime


def tickets_alert_sweep(*, now: datetime) -> int:
    raise NotImplementedError
