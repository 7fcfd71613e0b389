"""The legal clocks as staff see them, and the privacy officers' deadline alerts (DSR-2).

A ticket is *at risk* from DSR_ALERT_BUSINESS_DAYS business days before the date that
now applies (``due_on``: the extended date if any) until that date, and *overdue* from
the day after. Business days come from the ticket's own stored calendar: a Californian
ticket counts Californian holidays, an Irish one Irish holidays.

The sweep alerts each level once per ticket: the claim is a conditional UPDATE on
``alert_level``, so two sweeps running at once (two beat schedulers, a slow worker) send
one alert. An extension resets the level (ticket_extend), so the new date alerts again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.services import notification_create
from dsr import calendar
from dsr.models import OPEN_STATUSES, AlertLevel, Ticket, TicketEvent, TicketEventKind

logger = logging.getLogger(__name__)


# --- Where a ticket stands ------------------------------------------------------------------
def alert_horizon(*, today: date, calendar_name: str) -> date:
    """The last due date that counts as at risk today, in *calendar_name*'s business days."""
    return calendar.add_business_days(today, settings.DSR_ALERT_BUSINESS_DAYS, calendar_name)


def ticket_deadline_level(ticket: Ticket, *, today: date) -> str:
    """AlertLevel.OVERDUE, AT_RISK or NONE for an open ticket; NONE once answered."""
    if not ticket.is_open:
        return AlertLevel.NONE
    if ticket.due_on < today:
        return AlertLevel.OVERDUE
    if ticket.due_on <= alert_horizon(today=today, calendar_name=ticket.calendar):
        return AlertLevel.AT_RISK
    return AlertLevel.NONE


def tickets_with_due(qs: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Annotate ``due`` (the date that applies now) so lists sort and filter on it in SQL."""
    return qs.annotate(due=Coalesce("extended_due", "first_due"))


def _open_calendars() -> list[str]:
    return list(
        Ticket.objects.filter(status__in=OPEN_STATUSES)
        .order_by()
        .values_list("calendar", flat=True)
        .distinct()
    )


def overdue_q(*, today: date) -> Q:
    """Open tickets past their due date (on a ``tickets_with_due`` queryset)."""
    return Q(status__in=OPEN_STATUSES, due__lt=today)


def at_risk_q(*, today: date) -> Q:
    """Open tickets due today or within the alert horizon of their own calendar."""
    within = Q(pk__in=[])
    for name in _open_calendars():
        within |= Q(calendar=name, due__lte=alert_horizon(today=today, calendar_name=name))
    return Q(status__in=OPEN_STATUSES, due__gte=today) & within


@dataclass(frozen=True)
class DeadlineCounts:
    overdue: int
    at_risk: int


def tickets_deadline_counts(*, today: date | None = None) -> DeadlineCounts:
    """For the summary line above the ticket list."""
    today = today or timezone.localdate()
    qs = tickets_with_due(Ticket.objects.all())
    return DeadlineCounts(
        overdue=qs.filter(overdue_q(today=today)).count(),
        at_risk=qs.filter(at_risk_q(today=today)).count(),
    )


# --- The alert sweep ------------------------------------------------------------------------
# Which levels a ticket may still be in for each alert to be due: OVERDUE follows AT_RISK
# (or comes straight from NONE when a ticket was never seen at risk).
_CLAIM_FROM: dict[str, list[str]] = {
    AlertLevel.AT_RISK: [AlertLevel.NONE],
    AlertLevel.OVERDUE: [AlertLevel.NONE, AlertLevel.AT_RISK],
}


def tickets_alert_sweep(*, now: datetime) -> int:
    """Alert the privacy officers about tickets that became at risk or overdue; the count."""
    today = timezone.localdate(now)
    # Only tickets whose level must still rise: a sweep every few minutes stays cheap.
    rising = (overdue_q(today=today) & Q(alert_level__in=_CLAIM_FROM[AlertLevel.OVERDUE])) | (
        at_risk_q(today=today) & Q(alert_level__in=_CLAIM_FROM[AlertLevel.AT_RISK])
    )
    candidates = tickets_with_due(Ticket.objects.all()).filter(rising).order_by(F("due"), "id")
    sent = 0
    for ticket in candidates:
        level = ticket_deadline_level(ticket, today=today)
        if level != AlertLevel.NONE and _alert(ticket, level=level, now=now, today=today):
            sent += 1
    return sent


def _alert(ticket: Ticket, *, level: str, now: datetime, today: date) -> bool:
    from dsr.services.verification import privacy_officers

    with transaction.atomic():
        claimed = Ticket.objects.filter(
            pk=ticket.pk, status__in=OPEN_STATUSES, alert_level__in=_CLAIM_FROM[level]
        ).update(alert_level=level, updated_at=now)
        if not claimed:
            return False  # another sweep alerted it, or it was answered or extended meanwhile
        ticket.alert_level = level
        title = alert_title(ticket, today=today)
        TicketEvent.objects.create(
            ticket=ticket, kind=TicketEventKind.ALERT, created_at=now, note=title
        )
        link = reverse("admin:dsr_ticket_change", args=[ticket.pk])
        officers = privacy_officers()
        for officer in officers:
            notification_create(user=officer, title=title, link=link)
        ticket_id, officer_ids = ticket.pk, [o.pk for o in officers]
        transaction.on_commit(lambda: _enqueue_alert_emails(ticket_id, officer_ids))
    return True


def alert_title(ticket: Ticket, *, today: date) -> str:
    days = (ticket.due_on - today).days
    if days < 0:
        return f"{ticket.reference} is overdue: it was due on {ticket.due_on:%Y-%m-%d}"
    when = "today" if days == 0 else f"on {ticket.due_on:%Y-%m-%d}"
    return f"{ticket.reference} is due {when}: answer it or extend it"


def _enqueue_alert_emails(ticket_id: int, officer_ids: list[int]) -> None:
    from dsr.tasks import alert_email

    for officer_id in officer_ids:
        alert_email.delay(ticket_id, officer_id)


def alert_email_send(*, ticket_id: int, officer_id: int) -> bool:
    """Email one officer (officers do not see each other's addresses).

    Runs in a task that retries SMTP faults with backoff; the in-site notice was committed
    with the claim, so the officer sees the alert on the site meanwhile.
    """
    from accounts.models import User

    ticket = Ticket.objects.filter(pk=ticket_id).first()
    officer = User.objects.filter(pk=officer_id, is_active=True).exclude(email="").first()
    if ticket is None or officer is None:
        return False
    context = {
        "ticket": ticket,
        "title": alert_title(ticket, today=timezone.localdate()),
        "admin_link": settings.SITE_URL + reverse("admin:dsr_ticket_change", args=[ticket.pk]),
        "site_name": settings.SITE_NAME,
        "alert_days": settings.DSR_ALERT_BUSINESS_DAYS,
    }
    subject = " ".join(render_to_string("emails/dsr/alert_subject.txt", context).split())
    body = render_to_string("emails/dsr/alert.txt", context)
    return EmailMessage(subject, body, to=[officer.email]).send() == 1
