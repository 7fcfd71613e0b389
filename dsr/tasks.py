from __future__ import annotations

from celery import shared_task


@shared_task
def retention_run() -> int:
    """Beat runs this every RETENTION_INTERVAL_MINUTES; each rule runs once per period."""
    from dsr.services.retention import retention_run_all

    return len(retention_run_all())
