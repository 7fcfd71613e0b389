"""The periodic sweep of data-subject requests (beat, every few minutes).

Nothing here relies on a Celery message surviving: each part finds its work in the
database (a deadline near, a claim gone stale, a wait that is over) and is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone

logger = logging.getLogger(__name__)


def _parts() -> list[tuple[str, Callable[..., Any]]]:
    from dsr.services.breach_notify import breach_alert_sweep
    from dsr.services.clocks import tickets_alert_sweep
    from dsr.services.erasure import erasure_resume
    from dsr.services.export import export_resume
    from dsr.services.intake import tickets_expire_unverified

    return [
        ("alerts", tickets_alert_sweep),
        ("unverified", tickets_expire_unverified),
        ("exports", export_resume),
        ("erasures", erasure_resume),
        ("breach_alerts", breach_alert_sweep),
    ]


def tickets_sweep_all(*, now: datetime | None = None) -> dict[str, Any]:
    """Run every part; one failing part is logged and does not stop the others."""
    now = now or timezone.now()
    report: dict[str, Any] = {}
    for name, part in _parts():
        try:
            report[name] = part(now=now)
        except Exception:
            logger.exception("dsr sweep part %s failed", name)
            report[name] = "failed"
    return report
