"""Data-subject-request tickets: intake, the state machine, the legal clock (DSR-1, DSR-2).

Every change to a ticket goes through these services. Each writes the ticket's own
history (TicketEvent) and an audit row in the same transaction, and tells the subject
(email, and in-site for account holders) after commit. Fulfilment itself lives in
export.py (access, portability), erasure.py and rights.py (everything else); this
module only dispatches to them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditAction, User
from accounts.services import audit_log_write, notification_create
from dsr import calendar
from dsr.models import (
    OPEN_STATUSES,
    TRANSITIONS,
    Channel,
    IdentityCheck,
    Jurisdiction,
    RejectionReason,
    RequestType,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
)

REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # read aloud on the phone


class TicketRefused(Exception):
    """A request that cannot be accepted as asked; the message is shown to the person."""

    def __init__(self, message: str, *, existing: Ticket | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.existing = existing


class TicketStateError(Exception):
    """A transition the state machine does not allow (a stale admin form, a double click)."""


@dataclass(frozen=True)
class Intake:
    ticket: Ticket
    created: bool  # False: merged into an open request of the same type
    message: str


@dataclass(frozen=True)
class DueDates:
    calendar: str
    first_due: date
    confirm_due: date | None


# --- The legal clock ------------------------------------------------------------------------
def ticket_due_dates(*, type: str, jurisdiction: str, received: date) -> DueDates:
    """Computed once at receipt and stored (holiday data changes between releases)."""
    cal = settings.DSR_CALENDAR
    if type == RequestType.SHINE_THE_LIGHT:
        return DueDates("US-CA", calendar.shine_the_light_due(received), None)
    if jurisdiction == Jurisdiction.CCPA:
        return DueDates(
            "US-CA", calendar.ccpa_due(received), calendar.ccpa_confirm_due(received, "US-CA")
        )
    return DueDates(cal, calendar.gdpr_due(received, cal), None)


def ticket_extended_due(ticket: Ticket) -> date:
    received = timezone.localdate(ticket.received_at)
    if ticket.jurisdiction == Jurisdiction.CCPA:
        return calendar.ccpa_extended_due(received)
    return calendar.gdpr_extended_due(received, ticket.calendar)


def ticket_days_left(ticket: Ticket, *, today: date | None = None) -> int:
    return (ticket.due_on - (today or timezone.localdate())).days


# --- Helpers --------------------------------------------------------------------------------
def _new_reference() -> str:
    return "DSR-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))


def _event(
    ticket: Ticket,
    kind: str,
    *,
    actor: User | None,
    note: str = "",
    from_status: str = "",
    to_status: str = "",
) -> TicketEvent:
    actor_obj = actor if actor is not None and actor.is_authenticated else None
    return TicketEvent.objects.create(
        ticket=ticket,
        kind=kind,
        actor=actor_obj,
        note=note,
        from_status=from_status,
        to_status=to_status,
    )


def ticket_audit(ticket: Ticket, action: AuditAction, *, actor: User | None, **detail: Any) -> None:
    # The reference and type only: the audit log must hold no more of the subject than
    # the ticket itself (erasure anonymises the subject's audit rows anyway).
    audit_log_write(
        actor=actor,
        action=action,
        subject=ticket.user,
        detail={"ticket": ticket.reference, "type": ticket.type, **detail},
    )


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _open_duplicate(*, type: str, user: User | None, email: str) -> Ticket | None:
    qs = Ticket.objects.filter(type=type, status__in=OPEN_STATUSES)
    if user is not None:
        return qs.filter(user=user).order_by("id").first()
    if email:
        return qs.filter(user__isnull=True, email__iexact=email).order_by("id").first()
    return None


def _subject_tickets(*, user: User | None, email: str) -> Any:
    if user is not None:
        return Ticket.objects.filter(user=user)
    return Ticket.objects.filter(user__isnull=True, email__iexact=email)


def _check_limits(*, type: str, user: User | None, email: str, now: Any) -> None:
    """One access export per DSR_EXPORT_MIN_HOURS (the archive of the last is still there)."""
    if type not in (RequestType.ACCESS, RequestType.PORTABILITY):
        return
    since = now - timedelta(hours=settings.DSR_EXPORT_MIN_HOURS)
    recent = (
        _subject_tickets(user=user, email=email)
        .filter(type__in=[RequestType.ACCESS, RequestType.PORTABILITY], received_at__gte=since)
        .exclude(status=TicketStatus.REJECTED)
        .order_by("-received_at")
        .first()
    )
    if recent is not None:
        raise TicketRefused(
            f"You asked for an export less than {settings.DSR_EXPORT_MIN_HOURS} hours ago "
            f"({recent.reference}); its archive covers everything we hold. You can ask "
            "again once that time has passed.",
            existing=recent,
        )


def _shine_the_light_repeat(*, user: User | None, email: str, now: Any) -> Ticket | None:
    """An earlier Shine the Light request answered this calendar year (DSR-4: once a year)."""
    return (
        _subject_tickets(user=user, email=email)
        .filter(
            type=RequestType.SHINE_THE_LIGHT,
            received_at__year=timezone.localtime(now).year,
            status__in=[TicketStatus.FULFILLED, TicketStatus.CLOSED],
        )
        .order_by("fulfilled_at")
        .first()
    )


# --- Intake ---------------------------------------------------------------------------------
def ticket_create(
    *,
    type: str,
    channel: str,
    actor: User | None,
    user: User | None = None,
    email: str = "",
    jurisdiction: str = Jurisdiction.GDPR,
    details: str = "",
    direct_marketing: bool = False,
    identity_check: str = IdentityCheck.NONE,
    identity_note: str = "",
    child: bool = False,
    not_before: Any = None,
    received_at: Any = None,
) -> Intake:
    """Open a request (or merge it into an open one of the same type for the subject).

    *identity_check* says how the subject was identified: LOGIN (account page), a STAFF_*
    method (entered by staff), or NONE (public form: a code goes to *email* next).
    """
    if type not in RequestType.values:
        raise TicketRefused("Choose one of the listed kinds of request.")
    if jurisdiction not in Jurisdiction.values:
        raise TicketRefused("Choose GDPR or CCPA.")
    if user is None and not email:
        raise TicketRefused("An email address is needed to answer the request.")
    if channel == Channel.STAFF and not child and identity_check in ("", IdentityCheck.NONE):
        raise TicketRefused("Say how the subject's identity was checked.")
    email = (email or (user.email if user else "")).strip().lower()
    now = received_at or timezone.now()
    with transaction.atomic():
        if user is not None:
            # Serialise one subject's intake: two clicks must not open two tickets.
            User.objects.select_for_update().filter(pk=user.pk).first()
        duplicate = _open_duplicate(type=type, user=user, email=email)
        if duplicate is not None:
            return _merge(duplicate, actor=actor, details=details)
        _check_limits(type=type, user=user, email=email, now=now)
        due = ticket_due_dates(
            type=type, jurisdiction=jurisdiction, received=timezone.localdate(now)
        )
        ticket = _insert_ticket(
            type=type,
            jurisdiction=jurisdiction,
            channel=channel,
            user=user,
            email=email,
            details=details,
            direct_marketing=direct_marketing,
            child=child,
            not_before=not_before,
            received_at=now,
            due=due,
            entered_by=actor if channel == Channel.STAFF else None,
        )
        if type == RequestType.SHINE_THE_LIGHT:
            earlier = _shine_the_light_repeat(user=user, email=email, now=now)
            if earlier is not None:
                answered = earlier.fulfilled_at or earlier.received_at
                ticket.repeat_of = earlier
                ticket.flag = (
                    f"Second Shine the Light request this calendar year: {earlier.reference} "
                    f"was answered on {timezone.localdate(answered):%Y-%m-%d}."
                )
                ticket.save(update_fields=["repeat_of", "flag"])
        _event(ticket, TicketEventKind.CREATED, actor=actor, to_status=ticket.status)
        ticket_audit(ticket, AuditAction.DSR_RECEIVED, actor=actor, channel=channel)
        ticket_notify_subject(ticket=ticket, event="received")
        if due.confirm_due is not None:
            ticket_confirm_receipt(ticket=ticket)
        if identity_check not in ("", IdentityCheck.NONE):
            ticket_verify(ticket=ticket, actor=actor, method=identity_check, note=identity_note)
        else:
            ticket_transition(ticket=ticket, to=TicketStatus.AWAITING_VERIFICATION, actor=actor)
    ticket.refresh_from_db()
    return Intake(ticket, True, f"Your request {ticket.reference} was received.")


def _insert_ticket(*, due: DueDates, **fields: Any) -> Ticket:
    for _ in range(5):
        try:
            with transaction.atomic():
                return Ticket.objects.create(
                    reference=_new_reference(),
                    calendar=due.calendar,
                    first_due=due.first_due,
                    confirm_due=due.confirm_due,
                    **fields,
                )
        except IntegrityError:  # a reference collision: ~1e-12, but never a 500
            continue
    raise RuntimeError("could not allocate a ticket reference")


def _merge(ticket: Ticket, *, actor: User | None, details: str) -> Intake:
    ticket = _locked(ticket)
    ticket.merged_count += 1
    if details and details not in ticket.details:
        ticket.details = (ticket.details + "\n\n" + details).strip()
    ticket.save(update_fields=["merged_count", "details", "updated_at"])
    _event(ticket, TicketEventKind.MERGED, actor=actor, note=details[:2000])
    return Intake(
        ticket,
        False,
        f"You already have an open request of this kind ({ticket.reference}); "
        "we added this one to it.",
    )


# --- The state machine ----------------------------------------------------------------------
def ticket_transition(
    *, ticket: Ticket, to: str, actor: User | None, note: str = "", **fields: Any
) -> Ticket:
    """Move *ticket* to status *to* (and set *fields*), with its history and audit row."""
    with transaction.atomic():
        locked = _locked(ticket)
        if to not in TRANSITIONS[locked.status]:
            raise TicketStateError(
                f"{locked.reference} is {locked.get_status_display().lower()}; "
                f"it cannot become {TicketStatus(to).label.lower()}."
            )
        previous = locked.status
        locked.status = to
        for name, value in fields.items():
            setattr(locked, name, value)
        if to == TicketStatus.FULFILLED:
            locked.fulfilled_at = timezone.now()
            locked.blocked_reason = ""
        if to == TicketStatus.CLOSED:
            locked.closed_at = timezone.now()
        locked.save()
        _event(
            locked,
            TicketEventKind.TRANSITION,
            actor=actor,
            from_status=previous,
            to_status=to,
            note=note,
        )
        ticket_audit(locked, AuditAction.DSR_STATUS, actor=actor, **{"from": previous, "to": to})
    ticket.refresh_from_db()
    return ticket


def ticket_verify(*, ticket: Ticket, actor: User | None, method: str, note: str = "") -> Ticket:
    """The subject's identity is established: the fulfilment starts."""
    if method not in IdentityCheck.values or method == IdentityCheck.NONE:
        raise TicketRefused("Choose how the identity was checked.")
    with transaction.atomic():
        ticket = ticket_transition(
            ticket=ticket,
            to=TicketStatus.VERIFIED,
            actor=actor,
            note=note,
            verified_at=timezone.now(),
            identity_check=method,
            identity_note=note,
        )
        ticket_start(ticket=ticket, actor=actor)
    return ticket


def ticket_start(*, ticket: Ticket, actor: User | None) -> None:
    """Hand a verified ticket to its fulfilment (each module enqueues its work on commit)."""
    if ticket.type in (RequestType.ACCESS, RequestType.PORTABILITY):
        from dsr.services.export import export_start

        export_start(ticket=ticket, actor=actor)
    elif ticket.type == RequestType.ERASURE:
        from dsr.services.erasure import erasure_start

        erasure_start(ticket=ticket, actor=actor)
    else:
        from dsr.services.rights import rights_start

        rights_start(ticket=ticket, actor=actor)


def ticket_assign(*, ticket: Ticket, assignee: User | None, actor: User) -> Ticket:
    if assignee is not None and not assignee.is_staff:
        raise TicketRefused("Tickets can only be assigned to staff.")
    with transaction.atomic():
        locked = _locked(ticket)
        locked.assignee = assignee
        locked.save(update_fields=["assignee", "updated_at"])
        who = assignee.email if assignee else "nobody"
        _event(locked, TicketEventKind.ASSIGNED, actor=actor, note=f"Assigned to {who}.")
        ticket_audit(locked, AuditAction.DSR_ASSIGNED, actor=actor, assignee=who)
    ticket.refresh_from_db()
    return ticket


def ticket_extend(*, ticket: Ticket, actor: User, reason: str, today: date | None = None) -> Ticket:
    """GDPR +2 months / CCPA +45 days, once, before the first due date, with a reason."""
    reason = reason.strip()
    if not reason:
        raise TicketRefused("Give the reason for the extension: the subject is told it.")
    today = today or timezone.localdate()
    with transaction.atomic():
        locked = _locked(ticket)
        if not locked.is_open:
            raise TicketRefused("Only an open request can be extended.")
        if locked.type == RequestType.SHINE_THE_LIGHT:
            raise TicketRefused("A Shine the Light request has 30 days and no extension.")
        if locked.extended_due is not None:
            raise TicketRefused("This request was already extended once.")
        if not calendar.gdpr_extension_allowed(locked.first_due, today):
            raise TicketRefused(
                f"The first due date ({locked.first_due:%Y-%m-%d}) has passed: an extension "
                "must be made, and the subject told, before it."
            )
        locked.extended_due = ticket_extended_due(locked)
        locked.extension_reason = reason
        locked.extended_at = timezone.now()
        locked.alert_level = ""
        locked.save()
        _event(
            locked,
            TicketEventKind.EXTENDED,
            actor=actor,
            note=f"Due {locked.extended_due:%Y-%m-%d}. Reason: {reason}",
        )
        ticket_audit(locked, AuditAction.DSR_EXTENDED, actor=actor, due=str(locked.extended_due))
        ticket_notify_subject(ticket=locked, event="extended")
    ticket.refresh_from_db()
    return ticket


def ticket_reject(*, ticket: Ticket, actor: User | None, reason: str, text: str = "") -> Ticket:
    if reason not in RejectionReason.values:
        raise TicketRefused("Choose a reason from the list.")
    if reason == RejectionReason.OTHER and not text.strip():
        raise TicketRefused("Explain the reason: the subject is told it.")
    with transaction.atomic():
        ticket = ticket_transition(
            ticket=ticket,
            to=TicketStatus.REJECTED,
            actor=actor,
            note=f"{RejectionReason(reason).label}. {text}".strip(),
            rejection_reason=reason,
            rejection_text=text.strip(),
        )
        ticket_notify_subject(ticket=ticket, event="rejected")
    return ticket


def ticket_fulfil(
    *,
    ticket: Ticket,
    actor: User | None,
    note: str = "",
    outcome: dict[str, Any] | None = None,
) -> Ticket:
    """Done: *note* is what the subject is told; *outcome* the structured answer/receipt."""
    fields: dict[str, Any] = {"outcome_note": note}
    if outcome is not None:
        fields["outcome"] = outcome
    with transaction.atomic():
        ticket = ticket_transition(
            ticket=ticket, to=TicketStatus.FULFILLED, actor=actor, note=note[:2000], **fields
        )
        ticket_notify_subject(ticket=ticket, event="fulfilled")
    return ticket


def ticket_close(*, ticket: Ticket, actor: User | None, note: str = "") -> Ticket:
    return ticket_transition(ticket=ticket, to=TicketStatus.CLOSED, actor=actor, note=note)


def ticket_note(*, ticket: Ticket, actor: User | None, note: str, kind: str = "note") -> None:
    _event(ticket, kind, actor=actor, note=note)


def ticket_block(*, ticket: Ticket, reason: str, actor: User | None = None) -> None:
    """Record why fulfilment cannot go on (shown to staff); a retry clears it."""
    Ticket.objects.filter(pk=ticket.pk).update(
        blocked_reason=reason[:500], updated_at=timezone.now()
    )
    ticket.blocked_reason = reason[:500]
    _event(ticket, TicketEventKind.STEP, actor=actor, note=f"Blocked: {reason}"[:2000])


# --- Telling the subject --------------------------------------------------------------------
def ticket_confirm_receipt(*, ticket: Ticket) -> None:
    """CCPA: confirm receipt within 10 business days; we do it at once."""
    Ticket.objects.filter(pk=ticket.pk).update(confirmation_sent_at=timezone.now())
    ticket.confirmation_sent_at = timezone.now()
    _event(ticket, TicketEventKind.CONFIRMED, actor=None)
    ticket_notify_subject(ticket=ticket, event="confirmation")


def ticket_notify_subject(*, ticket: Ticket, event: str) -> None:
    """Tell the subject: an in-site notice (account holders) and an email after commit.

    *event* names the templates ``emails/dsr/<event>.txt`` and ``<event>_subject.txt``.
    """
    from django.urls import reverse

    from dsr.tasks import ticket_email

    if ticket.user is not None and ticket.user.is_active:
        notification_create(
            user=ticket.user,
            title=f"Your privacy request {ticket.reference}: {_EVENT_TITLES.get(event, event)}",
            link=reverse("dsr:ticket", args=[ticket.reference]),
        )
    _event(ticket, TicketEventKind.SUBJECT_TOLD, actor=None, note=event)
    ticket_id = ticket.pk
    transaction.on_commit(lambda: ticket_email.delay(ticket_id, event))


_EVENT_TITLES = {
    "received": "received",
    "confirmation": "receipt confirmed",
    "verified": "identity confirmed",
    "extended": "deadline extended",
    "fulfilled": "done",
    "rejected": "not fulfilled",
    "awaiting": "waiting for a decision",
    "awaiting_orders": "waiting for your orders to finish",
    "restriction_lifted": "restriction lifted",
}
