"""Erasure: registry-driven, idempotent, resumable steps with a receipt (DSR-3, ORD-4, ACC-5).

A verified erasure ticket gets a plan of ErasureStep rows (see erasure_steps.py for what
each does and why in that order). ``erasure_run`` claims the first step not done with a
conditional UPDATE (two workers never run the same step), runs it, and goes on. A
storage fault blocks the step: the ticket says which, and the run is retried with
exponential backoff, by a delayed task and by the sweep (``erasure_resume``). A worker
killed mid-step leaves the step RUNNING; once older than the Celery hard time limit it
is stale and re-run (every step is idempotent). The ticket is fulfilled only by the
receipt step, after every data step is done.

The subject is told at the end by email, at the address captured when the erasure
started (``ticket.email``): the account's own address is replaced by then, and an
in-site notification makes no sense for an account that is gone. Only after that email
is sent does the last step erase the ticket's own copy of the address.
"""

from __future__ import annotations

import logging
import smtplib
from collections import Counter
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import AuditAction, User
from accounts.services import audit_log_write, notification_create
from common.maintenance import privacy_maintenance
from dsr.models import (
    Channel,
    ErasureStep,
    IdentityCheck,
    RequestType,
    StepStatus,
    Ticket,
    TicketEventKind,
    TicketStatus,
)
from dsr.registry import Anonymise, registry
from dsr.services import erasure_steps as steps
from dsr.services.erasure_steps import Subject, erasure_subject
from dsr.services.tickets import (
    TicketRefused,
    ticket_block,
    ticket_note,
    ticket_notify_subject,
    ticket_transition,
)

logger = logging.getLogger(__name__)

# Faults worth waiting out: storage (S3, disk), the network, SMTP, the database restarting.
TRANSIENT = (
    BotoCoreError,
    ClientError,
    OSError,
    ConnectionError,
    TimeoutError,
    smtplib.SMTPException,
    OperationalError,
    SoftTimeLimitExceeded,
)
RETRY_TASKS_MAX = 5  # delayed retries queued by the run itself; the sweep carries on after
BACKOFF_BASE = 30
BACKOFF_MAX = 600
PENDING_GRACE = timedelta(minutes=2)  # a queued run that never came (lost message)

STEP_NAMES = {
    steps.SESSIONS: "ending sessions",
    steps.QUEUED: "cancelling queued work",
    steps.SUPPRESSION: "suppression list",
    steps.FILES: "stored files",
    steps.ACCOUNT: "the account",
    steps.RECEIPT: "receipt",
    steps.TELL: "telling the subject",
}


def _step_name(key: str) -> str:
    return STEP_NAMES.get(key) or steps.model_name_plural(key)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, attempts - 1)))


def stale_after() -> timedelta:
    """A RUNNING step older than this lost its worker (the hard time limit killed it)."""
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


# --- Start, wait, approve ---------------------------------------------------------------------
def erasure_start(*, ticket: Ticket, actor: User | None, now: datetime | None = None) -> None:
    """Called when the erasure ticket is verified (and by the sweep when a wait is over)."""
    now = now or timezone.now()
    if ticket.not_before is not None and ticket.not_before > now and not ticket.child:
        day = timezone.localdate(ticket.not_before)
        ticket_note(
            ticket=ticket,
            actor=None,
            kind=TicketEventKind.STEP,
            note=f"Waiting until {day:%Y-%m-%d} (account closure waiting period).",
        )
        return
    subject = erasure_subject(ticket)
    if not ticket.child:
        busy = steps.orders_in_progress(subject)
        if busy:
            _await_orders(ticket, busy, actor)
            return
    _begin(ticket, actor, subject)


def _orders_reason(references: list[str]) -> str:
    shown = ", ".join(references[:20]) + (", ..." if len(references) > 20 else "")
    return f"Orders in progress: {shown}: finish or cancel them, then approve the erasure"


def _await_orders(ticket: Ticket, references: list[str], actor: User | None) -> None:
    reason = _orders_reason(references)
    with transaction.atomic():
        ticket = ticket_transition(
            ticket=ticket,
            to=TicketStatus.AWAITING_APPROVAL,
            actor=actor,
            note=reason,
            blocked_reason=reason[:500],
        )
        ticket_notify_subject(ticket=ticket, event="awaiting_orders")


def erasure_approve(*, ticket: Ticket, actor: User) -> Ticket:
    """Staff decided (the orders are finished or cancelled): the erasure goes on."""
    ticket.refresh_from_db()
    if ticket.type != RequestType.ERASURE or ticket.status != TicketStatus.AWAITING_APPROVAL:
        raise TicketRefused("Only an erasure waiting for a staff decision can be approved.")
    busy = steps.orders_in_progress(erasure_subject(ticket))
    if busy:
        raise TicketRefused(_orders_reason(busy) + ".")
    _begin(ticket, actor, erasure_subject(ticket))
    ticket.refresh_from_db()
    return ticket


def _begin(ticket: Ticket, actor: User | None, subject: Subject, **extra: Any) -> None:
    from dsr.tasks import erasure_run as erasure_task

    fields: dict[str, Any] = {"blocked_reason": "", **extra}
    if subject.user is not None and subject.user.email:
        # The address the subject is told at when it is all done (the account's is gone).
        fields["email"] = subject.user.email
    with transaction.atomic():
        ticket = ticket_transition(
            ticket=ticket,
            to=TicketStatus.IN_PROGRESS,
            actor=actor,
            note="Erasure started."
            + (" Reported as a child's account." if ticket.child or extra.get("child") else ""),
            **fields,
        )
        keys = steps.plan(erasure_subject(ticket))
        ErasureStep.objects.bulk_create(
            [ErasureStep(ticket=ticket, position=i, key=key) for i, key in enumerate(keys)],
            ignore_conflicts=True,
        )
        ticket_id = ticket.pk
        transaction.on_commit(lambda: erasure_task.delay(ticket_id))


# --- Running the steps ------------------------------------------------------------------------
def _claim(step: ErasureStep, now: datetime) -> bool:
    claimable = Q(status__in=[StepStatus.PENDING, StepStatus.BLOCKED, StepStatus.FAILED]) | Q(
        status=StepStatus.RUNNING, started_at__lt=now - stale_after()
    )
    return (
        ErasureStep.objects.filter(claimable, pk=step.pk).update(
            status=StepStatus.RUNNING, started_at=now, attempts=F("attempts") + 1
        )
        == 1
    )


def _next_step(ticket: Ticket) -> ErasureStep | None:
    return ticket.erasure_steps.exclude(status=StepStatus.DONE).order_by("position").first()


def erasure_run(*, ticket_id: int) -> str:
    """Run (or resume) the erasure's steps in order; safe to call any number of times."""
    ticket = Ticket.objects.select_related("user").filter(pk=ticket_id).first()
    if ticket is None or ticket.type != RequestType.ERASURE:
        return "missing"
    if ticket.status not in (TicketStatus.IN_PROGRESS, TicketStatus.FULFILLED):
        return f"skipped: {ticket.status}"
    while True:
        ticket.refresh_from_db()
        step = _next_step(ticket)
        if step is None:
            return "done"
        if not _claim(step, timezone.now()):
            return "busy"  # another worker has it
        step.refresh_from_db()
        outcome = _run_one(ticket, step)
        if outcome != "done":
            return outcome


def _run_one(ticket: Ticket, step: ErasureStep) -> str:
    try:
        with privacy_maintenance():
            _dispatch(ticket, step)
    except TRANSIENT as exc:
        _blocked(ticket, step, exc)
        return "blocked"
    except Exception as exc:
        logger.exception("erasure %s: step %s failed", ticket.reference, step.key)
        _failed(ticket, step, exc)
        return "failed"
    if ticket.blocked_reason:
        Ticket.objects.filter(pk=ticket.pk).update(blocked_reason="", updated_at=timezone.now())
        if step.key != steps.TELL:  # after "tell" the ticket's notes are erased: add none
            ticket_note(
                ticket=ticket,
                actor=None,
                kind=TicketEventKind.STEP,
                note=f"Resumed: {_step_name(step.key)} done.",
            )
    return "done"


def _dispatch(ticket: Ticket, step: ErasureStep) -> None:
    """Run one step and mark it done."""
    subject = erasure_subject(ticket)
    if step.key == steps.RECEIPT:
        _receipt(ticket, step, subject)  # marks the step done with the fulfilment
        return
    if step.key == steps.TELL:
        _tell_and_forget(ticket, step, subject)
        return
    runners = {
        steps.SESSIONS: steps.step_sessions,
        steps.QUEUED: steps.step_queued_work,
        steps.SUPPRESSION: steps.step_suppression,
        steps.FILES: steps.step_files,
        steps.ACCOUNT: steps.step_account,
    }
    if step.key in runners:
        with transaction.atomic():
            runners[step.key](step, subject)
            _mark_done(step)
        return
    entry = registry.get(step.key)
    if entry is None:
        raise RuntimeError(f"no registry entry {step.key}")
    # Not one transaction: a large table goes in chunks, each committed with the step's
    # counts, so no lock is held for long; a re-run after a crash continues (idempotent).
    steps.step_entry(step, subject, entry)
    _mark_done(step)


def _mark_done(step: ErasureStep) -> None:
    # last_error stays: with attempts, the step's history of faults (no personal data).
    step.status = StepStatus.DONE
    step.finished_at = timezone.now()
    step.save()


def _blocked(ticket: Ticket, step: ErasureStep, exc: BaseException) -> None:
    from dsr.tasks import erasure_run as erasure_task

    error = f"{exc.__class__.__name__}: {exc}"[:300]
    ErasureStep.objects.filter(pk=step.pk).update(
        status=StepStatus.BLOCKED, last_error=error, finished_at=timezone.now()
    )
    what = "Storage unavailable" if step.key != steps.TELL else "Email could not be sent"
    ticket_block(ticket=ticket, reason=f"{what}: {_step_name(step.key)}; retrying")
    if step.attempts <= RETRY_TASKS_MAX:
        delay = int(backoff(step.attempts).total_seconds())
        ticket_id = ticket.pk
        transaction.on_commit(lambda: erasure_task.apply_async((ticket_id,), countdown=delay))


def _failed(ticket: Ticket, step: ErasureStep, exc: BaseException) -> None:
    """Not a fault that passes by itself: staff are told; the sweep still retries slowly."""
    error = f"{exc.__class__.__name__}: {exc}"[:300]
    ErasureStep.objects.filter(pk=step.pk).update(
        status=StepStatus.FAILED, last_error=error, finished_at=timezone.now()
    )
    ticket_block(
        ticket=ticket,
        reason=f"Step failed: {_step_name(step.key)} ({exc.__class__.__name__}); "
        "the privacy team is alerted",
    )
    if step.attempts == 1:
        from dsr.services.verification import privacy_officers

        for officer in privacy_officers():
            notification_create(
                user=officer,
                title=f"Erasure {ticket.reference} is stuck at: {_step_name(step.key)}",
                body=f"The step failed with {exc.__class__.__name__}; it is retried every "
                f"{BACKOFF_MAX // 60} minutes. Nothing is half-erased without this notice.",
            )


# --- The receipt, and telling the subject -----------------------------------------------------
def _receipt(ticket: Ticket, step: ErasureStep, subject: Subject) -> None:
    late_rows = steps.sweep_late_rows(subject)
    late_files = steps.late_files(subject)
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        step.detail = {"late_rows": late_rows, "late_files": dict(late_files)}
        if ticket.status != TicketStatus.FULFILLED:  # a re-run after a crash: done already
            outcome = erasure_receipt(ticket, late_rows=late_rows, late_files=late_files)
            note = receipt_summary(outcome)
            audit_log_write(
                actor=None,
                action=AuditAction.DSR_ERASED,
                # No subject: the row must outlive the sweep of the subject's audit rows,
                # and the reference leads to the (anonymised) account anyway.
                subject=None,
                detail={"ticket": ticket.reference, "counts": outcome["totals"]},
            )
            ticket_transition(
                ticket=ticket,
                to=TicketStatus.FULFILLED,
                actor=None,
                note=note[:2000],
                outcome=outcome,
                outcome_note=note,
            )
        _mark_done(step)


def erasure_receipt(
    ticket: Ticket, *, late_rows: dict[str, int], late_files: Counter[str]
) -> dict[str, Any]:
    """Counts per model, files per storage prefix, what was kept, why and until when."""
    records: dict[str, dict[str, int]] = {}
    files: Counter[str] = Counter(late_files)
    kept, versions, extra = [], 0, {}
    for step in ticket.erasure_steps.order_by("position"):
        if step.key == steps.FILES:
            files.update(step.detail.get("files", {}))
            versions = int(step.detail.get("versions", 0))
            continue
        if step.key in (steps.SESSIONS, steps.QUEUED, steps.SUPPRESSION):
            extra[step.key] = step.detail
            continue
        label = steps.USER_LABEL if step.key == steps.ACCOUNT else step.key
        if registry.get(label) is None:
            continue
        counts = {
            "deleted": step.rows_deleted + late_rows.get(label, 0),
            "anonymised": step.rows_anonymised,
            "kept": step.rows_kept,
        }
        if step.files_deleted and step.key != steps.ACCOUNT:
            files["(again)"] += step.files_deleted
        records[label] = {k: v for k, v in counts.items() if v}
        if step.rows_kept:
            kept.append(
                {
                    "records": label,
                    "name": steps.model_name_plural(label),
                    "rows": step.rows_kept,
                    "why": step.detail.get("duty", ""),
                    "fields_kept": step.detail.get("fields_kept", []),
                    "until": step.detail.get("kept_until", {}),
                }
            )
    totals = {
        "deleted": sum(r.get("deleted", 0) for r in records.values()),
        "anonymised": sum(r.get("anonymised", 0) for r in records.values()),
        "kept": sum(r.get("kept", 0) for r in records.values()),
        "files": sum(files.values()),
    }
    return {
        "receipt": "erasure",
        "version": 1,
        "ticket": ticket.reference,
        "completed_at": timezone.now().isoformat(),
        "subject": "account" if ticket.user_id else "email address only",
        "records": {k: v for k, v in records.items() if v},
        "files": dict(files),
        "file_versions_deleted": versions,
        "kept": kept,
        "sessions_ended": extra.get(steps.SESSIONS, {}).get("sessions_ended", 0),
        "queued_work": extra.get(steps.QUEUED, {}),
        "suppression": "the address is kept only as a keyed hash on the marketing suppression list",
        "late": {"rows": late_rows, "files": dict(late_files)},
        "totals": totals,
    }


def receipt_summary(outcome: dict[str, Any]) -> str:
    """What the subject is told, in plain words (no personal data)."""
    t = outcome["totals"]
    lines = [
        f"We erased your personal data: {t['deleted']} records deleted, {t['anonymised']} "
        f"records anonymised, and {t['files']} stored files deleted with every stored "
        "version of them."
    ]
    if outcome["subject"] == "account":
        lines.append("Your account is closed: it can no longer be used to log in.")
    for kept in outcome["kept"]:
        duty = str(kept["why"]).split(" (")[0] or "the law"
        latest = kept["until"].get("latest")
        earliest = kept["until"].get("earliest")
        line = f"Your {kept['name']} are kept, reduced to what {duty} needs, until {latest}"
        if earliest and earliest != latest:
            line += f" (the first of them until {earliest})"
        lines.append(line + ", and deleted then.")
    lines.append(
        "Your email address is kept only as a keyed hash on our marketing suppression "
        "list, so that no marketing can ever reach it again."
    )
    return "\n".join(lines)


def _tell_and_forget(ticket: Ticket, step: ErasureStep, subject: Subject) -> None:
    """Email the subject, then erase the ticket's own copy of their address and words."""
    from dsr.emails import ticket_email_send

    if not step.detail.get("told"):
        # Sent here, not on commit by a separate task: the address must not be erased
        # before this email went, and an SMTP fault blocks and retries this step.
        sent = ticket_email_send(ticket_id=ticket.pk, event="fulfilled")
        ticket_note(ticket=ticket, actor=None, kind=TicketEventKind.SUBJECT_TOLD, note="fulfilled")
        step.detail = {"told": True, "emailed": sent}
        step.save(update_fields=["detail"])
    with transaction.atomic():
        for label in ("dsr.Ticket", "dsr.TicketEvent"):
            entry = registry.get(label)
            if entry is None or not isinstance(entry.erasure, Anonymise):
                continue
            manager = entry.model._default_manager
            own = (
                manager.filter(pk=ticket.pk)
                if entry.model is Ticket
                else manager.filter(ticket=ticket)
            )
            own.update(**entry.erasure.constant)
        ticket.challenges.all().delete()
        audit = registry.get("accounts.AuditEvent")
        if audit is not None and subject.user is not None:
            # Audit rows written about the subject during the erasure (status changes).
            steps.step_entry(step, subject, audit)
        _mark_done(step)


# --- The sweep --------------------------------------------------------------------------------
def erasure_resume(*, now: datetime) -> int:
    """Start erasures whose wait is over; re-run blocked, stale or lost ones. Returns how many."""
    from dsr.tasks import erasure_run as erasure_task

    count = 0
    waiting = Ticket.objects.filter(type=RequestType.ERASURE, status=TicketStatus.VERIFIED).filter(
        Q(not_before__lte=now) | Q(not_before__isnull=True, updated_at__lt=now - PENDING_GRACE)
    )
    for ticket in waiting.select_related("user"):
        try:
            with transaction.atomic():
                erasure_start(ticket=ticket, actor=None, now=now)
            count += 1
        except Exception:
            logger.exception("erasure %s could not start", ticket.reference)
    running = Ticket.objects.filter(
        type=RequestType.ERASURE,
        status__in=[TicketStatus.IN_PROGRESS, TicketStatus.FULFILLED],
        erasure_steps__status__in=[
            StepStatus.PENDING,
            StepStatus.RUNNING,
            StepStatus.BLOCKED,
            StepStatus.FAILED,
        ],
    ).distinct()
    for ticket in running:
        step = _next_step(ticket)
        if step is not None and _due(ticket, step, now):
            transaction.on_commit(partial(erasure_task.delay, ticket.pk))
            count += 1
    return count


def _due(ticket: Ticket, step: ErasureStep, now: datetime) -> bool:
    if step.status == StepStatus.RUNNING:
        return step.started_at is None or step.started_at < now - stale_after()
    if step.status == StepStatus.BLOCKED:
        return step.finished_at is None or step.finished_at + backoff(step.attempts) <= now
    if step.status == StepStatus.FAILED:
        return step.finished_at is None or step.finished_at + backoff(99) <= now
    previous = (
        ticket.erasure_steps.filter(position__lt=step.position, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    return (previous or ticket.updated_at) < now - PENDING_GRACE


# --- Children (ACC-5) -------------------------------------------------------------------------
def dsr_child_report(*, user: User, actor: User, note: str) -> Ticket:
    """Staff report an account as an under-13's: erased at once, no waiting, no approval."""
    if not actor.has_perm("dsr.report_child"):
        raise TicketRefused("Only a privacy officer can report a child's account.")
    if user.is_staff:
        raise TicketRefused("A staff account cannot be reported as a child's.")
    note = (note or "").strip()
    if not note:
        raise TicketRefused("Say how we learned that the account is a child's.")
    from dsr.services.tickets import ticket_create

    with transaction.atomic():
        intake = ticket_create(
            type=RequestType.ERASURE,
            channel=Channel.STAFF,
            actor=actor,
            user=user,
            details=note,
            identity_check=IdentityCheck.STAFF_REPORT,
            identity_note=note,
            child=True,
        )
        ticket = intake.ticket
        if not intake.created:
            ticket = _make_child(ticket, actor, note)
        audit_log_write(
            actor=actor,
            action=AuditAction.DSR_CHILD_REPORTED,
            # No subject: the erasure empties the subject's audit rows, and this one
            # must keep the reference (which leads to the account).
            subject=None,
            detail={"ticket": ticket.reference},
        )
    ticket.refresh_from_db()
    return ticket


def _make_child(ticket: Ticket, actor: User, note: str) -> Ticket:
    """An erasure of the account was already open (a closure waiting its period, or
    orders in progress): it is now a child's, and runs at once."""
    ticket_note(ticket=ticket, actor=actor, note=f"Reported as a child's account: {note}")
    if ticket.status in (TicketStatus.VERIFIED, TicketStatus.AWAITING_APPROVAL):
        _begin(ticket, actor, erasure_subject(ticket), child=True, not_before=None)
    elif ticket.status in (TicketStatus.RECEIVED, TicketStatus.AWAITING_VERIFICATION):
        ticket = ticket_transition(
            ticket=ticket,
            to=TicketStatus.VERIFIED,
            actor=actor,
            child=True,
            verified_at=timezone.now(),
            identity_check=IdentityCheck.STAFF_REPORT,
            identity_note=note,
        )
        erasure_start(ticket=ticket, actor=actor)
    return ticket


def erasure_leftovers(*, user_id: int | None, email: str) -> dict[str, int]:
    """What of the subject remains after an erasure: rows per registry entry still holding
    what their declaration removes (legal-duty rows count only if not reduced), live
    sessions, and stored objects under the keys of the subject's orders and rows."""
    from dsr.services.erasure_leftovers import leftovers

    return leftovers(user_id=user_id, email=email)
