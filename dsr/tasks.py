"""Celery tasks of the dsr app: thin, take ids, safe to run twice."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from accounts.tasks import TRANSIENT


@shared_task
def retention_run() -> int:
    """Beat runs this every RETENTION_INTERVAL_MINUTES; each rule runs once per period."""
    from dsr.services.retention import retention_run_all

    return len(retention_run_all())


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=600, max_retries=8)
def ticket_email(ticket_id: int, event: str) -> bool:
    """Email the subject about *event* of their request (SMTP down: retried with backoff)."""
    from dsr.emails import ticket_email_send

    return ticket_email_send(ticket_id=ticket_id, event=event)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=600, max_retries=8)
def alert_email(ticket_id: int, officer_id: int) -> bool:
    """Tell one privacy officer that a request is at risk or overdue (SMTP down: retried)."""
    from dsr.services.clocks import alert_email_send

    return alert_email_send(ticket_id=ticket_id, officer_id=officer_id)


@shared_task(ignore_result=True)
def export_build(archive_id: int) -> str:
    """Build one export archive; a second delivery finds it claimed or ready (idempotent)."""
    from dsr.services.export import export_build as build

    return build(archive_id=archive_id)


@shared_task(ignore_result=True)
def erasure_run(ticket_id: int) -> str:
    """Run (or resume) an erasure's steps; each step is idempotent."""
    from dsr.services.erasure import erasure_run as run

    return run(ticket_id=ticket_id)


@shared_task(ignore_result=True)
def tickets_sweep() -> dict[str, Any]:
    """Every few minutes (beat): the clocks, and any work whose worker or message was lost."""
    from dsr.services.sweep import tickets_sweep_all

    return tickets_sweep_all()
