"""Privacy officers' deadline alerts (DSR-2): once at risk, once overdue, in business days."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime, timedelta

import pytest
from celery.exceptions import Retry
from django.core import mail

from accounts.models import Notification
from dsr.models import (
    AlertLevel,
    Channel,
    Jurisdiction,
    RequestType,
    Ticket,
    TicketEventKind,
    TicketStatus,
)
from dsr.services import clocks
from dsr.services.clocks import (
    alert_horizon,
    ticket_deadline_level,
    tickets_alert_sweep,
    tickets_deadline_counts,
)
from dsr.services.tickets import ticket_create, ticket_extend, ticket_transition
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# Friday 13 March 2026; Tuesday 17 March is St Patrick's Day in Ireland, not in California.
FRIDAY = datetime(2026, 3, 13, 9, 0, tzinfo=UTC)


def _ticket(*, due: date, jurisdiction: str = Jurisdiction.GDPR, email: str = "") -> Ticket:
    """An open ticket whose applicable due date is *due* (received a month earlier)."""
    received = datetime.combine(due - timedelta(days=30), datetime.min.time(), tzinfo=UTC)
    ticket = ticket_create(
        type=RequestType.AUTOMATED,
        channel=Channel.PUBLIC_FORM,
        actor=None,
        email=email or f"subject-{due:%m%d}-{jurisdiction}@example.com",
        jurisdiction=jurisdiction,
        received_at=received,
    ).ticket
    Ticket.objects.filter(pk=ticket.pk).update(first_due=due)
    ticket.refresh_from_db()
    return ticket


def _alerts(ticket: Ticket) -> list[str]:
    return list(ticket.events.filter(kind=TicketEventKind.ALERT).values_list("note", flat=True))


def test_business_day_horizon_skips_weekends_and_each_calendars_holidays_DSR_2(settings):
    """DSR-2: 3 business days from Friday 13 March 2026: Thu 19 in Ireland (17th is a
    holiday), Wed 18 in California."""
    settings.DSR_ALERT_BUSINESS_DAYS = 3
    today = FRIDAY.date()
    assert alert_horizon(today=today, calendar_name="IE") == date(2026, 3, 19)
    assert alert_horizon(today=today, calendar_name="US-CA") == date(2026, 3, 18)

    ie_edge = _ticket(due=date(2026, 3, 19))
    ie_later = _ticket(due=date(2026, 3, 20))
    ca_edge = _ticket(due=date(2026, 3, 18), jurisdiction=Jurisdiction.CCPA)
    ca_later = _ticket(due=date(2026, 3, 19), jurisdiction=Jurisdiction.CCPA)
    assert ie_edge.calendar == "IE" and ca_edge.calendar == "US-CA"

    assert ticket_deadline_level(ie_edge, today=today) == AlertLevel.AT_RISK
    assert ticket_deadline_level(ie_later, today=today) == AlertLevel.NONE
    assert ticket_deadline_level(ca_edge, today=today) == AlertLevel.AT_RISK
    assert ticket_deadline_level(ca_later, today=today) == AlertLevel.NONE

    assert tickets_alert_sweep(now=FRIDAY) == 2
    levels = dict(Ticket.objects.values_list("pk", "alert_level"))
    assert levels[ie_edge.pk] == levels[ca_edge.pk] == AlertLevel.AT_RISK
    assert levels[ie_later.pk] == levels[ca_later.pk] == AlertLevel.NONE
    assert tickets_deadline_counts(today=today).at_risk == 2


def test_at_risk_then_overdue_each_alerted_once_to_every_officer_DSR_2(privacy_officer, committed):
    """DSR-2: an in-site notice and an email per privacy officer, once per stage."""
    second_officer = UserFactory(email="second-officer@example.com", is_superuser=True)
    ticket = _ticket(due=date(2026, 3, 16))
    mail.outbox.clear()

    with committed():
        assert tickets_alert_sweep(now=FRIDAY) == 1
    with committed():
        assert tickets_alert_sweep(now=FRIDAY + timedelta(hours=1)) == 0  # once
    ticket.refresh_from_db()
    assert ticket.alert_level == AlertLevel.AT_RISK
    assert len(_alerts(ticket)) == 1
    link = f"/admin/dsr/ticket/{ticket.pk}/change/"
    for officer in (privacy_officer, second_officer):
        notices = Notification.objects.filter(user=officer, link=link)
        assert notices.count() == 1 and ticket.reference in notices.get().title
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [privacy_officer.email, second_officer.email]
    )
    assert all(ticket.reference in m.subject and link in m.body for m in mail.outbox)
    assert "due on 16 March 2026" in mail.outbox[0].body
    # The alert names the ticket, not its subject.
    assert ticket.email not in mail.outbox[0].body

    mail.outbox.clear()
    tuesday = datetime(2026, 3, 17, 9, 0, tzinfo=UTC)
    with committed():
        assert tickets_alert_sweep(now=tuesday) == 1
        assert tickets_alert_sweep(now=tuesday + timedelta(days=1)) == 0
    ticket.refresh_from_db()
    assert ticket.alert_level == AlertLevel.OVERDUE
    assert len(_alerts(ticket)) == 2 and "overdue" in _alerts(ticket)[1]
    assert len(mail.outbox) == 2 and all("overdue" in m.subject for m in mail.outbox)
    assert Notification.objects.filter(user=privacy_officer).count() == 2


def test_a_ticket_found_overdue_gets_one_overdue_alert_not_two_DSR_2(privacy_officer, committed):
    ticket = _ticket(due=date(2026, 3, 10))
    mail.outbox.clear()
    with committed():
        assert tickets_alert_sweep(now=FRIDAY) == 1
    ticket.refresh_from_db()
    assert ticket.alert_level == AlertLevel.OVERDUE
    assert len(_alerts(ticket)) == 1 and len(mail.outbox) == 1
    assert tickets_deadline_counts(today=FRIDAY.date()).overdue == 1


def test_two_sweeps_racing_alert_once_DSR_2(privacy_officer):
    """The claim is a conditional UPDATE: a sweep holding a stale row sends nothing."""
    ticket = _ticket(due=date(2026, 3, 16))
    stale = Ticket.objects.get(pk=ticket.pk)
    assert tickets_alert_sweep(now=FRIDAY) == 1
    assert not clocks._alert(stale, level=AlertLevel.AT_RISK, now=FRIDAY, today=FRIDAY.date())
    assert len(_alerts(ticket)) == 1
    assert Notification.objects.filter(user=privacy_officer).count() == 1


def test_extension_resets_the_alert_and_answered_tickets_never_alert_DSR_2(privacy_officer):
    at_risk = _ticket(due=date(2026, 3, 16))
    answered = _ticket(due=date(2026, 3, 16), email="answered@example.com")
    ticket_transition(ticket=answered, to=TicketStatus.REJECTED, actor=None)
    assert tickets_alert_sweep(now=FRIDAY) == 1
    at_risk.refresh_from_db()
    assert at_risk.alert_level == AlertLevel.AT_RISK

    at_risk = ticket_extend(
        ticket=at_risk, actor=privacy_officer, reason="Many systems", today=FRIDAY.date()
    )
    assert at_risk.alert_level == AlertLevel.NONE and at_risk.due_on > date(2026, 4, 1)
    assert tickets_alert_sweep(now=FRIDAY) == 0  # the new date is months away
    # Near the new date it alerts again.
    near = datetime.combine(at_risk.due_on - timedelta(days=1), FRIDAY.timetz())
    assert tickets_alert_sweep(now=near) == 1
    answered.refresh_from_db()
    assert answered.alert_level == AlertLevel.NONE and not _alerts(answered)


def test_smtp_down_keeps_the_in_site_alert_and_the_email_is_retried_DSR_2(
    privacy_officer, committed, settings
):
    """The notice is committed with the claim; the email task retries the SMTP fault (in
    eager mode Celery raises Retry where a worker would schedule the next attempt)."""
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    ticket = _ticket(due=date(2026, 3, 16))
    with pytest.raises(Retry), committed():
        assert tickets_alert_sweep(now=FRIDAY) == 1
    assert Notification.objects.filter(user=privacy_officer).count() == 1
    ticket.refresh_from_db()
    assert ticket.alert_level == AlertLevel.AT_RISK
