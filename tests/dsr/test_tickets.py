"""The ticket core: intake, merging, limits, the legal clock, the state machine (DSR-1, DSR-2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core import mail

from accounts.models import AuditAction, AuditEvent
from dsr.models import (
    Channel,
    Jurisdiction,
    RejectionReason,
    RequestType,
    Ticket,
    TicketEventKind,
    TicketStatus,
)
from dsr.services.tickets import (
    TicketRefused,
    TicketStateError,
    ticket_create,
    ticket_due_dates,
    ticket_extend,
    ticket_reject,
    ticket_transition,
)

pytestmark = pytest.mark.django_db


def _run_on_commit():
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


def _public(email: str = "guest@example.com", **kw) -> Ticket:
    kw.setdefault("type", RequestType.AUTOMATED)
    with _run_on_commit():
        return ticket_create(channel=Channel.PUBLIC_FORM, actor=None, email=email, **kw).ticket


def test_dsr2_gdpr_due_dates_follow_the_calendar_and_are_stored(settings):
    """DSR-2: one month per Reg. 1182/71, moved past weekends and Irish holidays."""
    settings.DSR_CALENDAR = "IE"
    assert ticket_due_dates(
        type="access", jurisdiction="gdpr", received=date(2026, 1, 31)
    ).first_due == date(2026, 3, 2)
    assert ticket_due_dates(
        type="access", jurisdiction="gdpr", received=date(2025, 11, 25)
    ).first_due == date(2025, 12, 29)
    assert ticket_due_dates(
        type="access", jurisdiction="gdpr", received=date(2024, 1, 31)
    ).first_due == date(2024, 2, 29)


def test_dsr2_ccpa_and_shine_the_light_clocks():
    """DSR-2/DSR-4: CCPA 45 days with a 10-business-day confirmation; STL 30 days."""
    ccpa = ticket_due_dates(type="access", jurisdiction="ccpa", received=date(2026, 3, 2))
    assert ccpa.first_due == date(2026, 4, 16)
    assert ccpa.confirm_due == date(2026, 3, 16)
    stl = ticket_due_dates(type="shine_the_light", jurisdiction="gdpr", received=date(2026, 3, 2))
    assert stl.first_due == date(2026, 4, 1) and stl.confirm_due is None


def test_dsr1_public_request_waits_for_verification_and_is_audited():
    ticket = _public()
    assert ticket.status == TicketStatus.AWAITING_VERIFICATION
    assert ticket.reference.startswith("DSR-")
    kinds = list(ticket.events.values_list("kind", flat=True))
    assert TicketEventKind.CREATED in kinds and TicketEventKind.TRANSITION in kinds
    assert AuditEvent.objects.filter(
        action=AuditAction.DSR_RECEIVED, detail__ticket=ticket.reference
    ).exists()
    assert any(ticket.reference in m.subject for m in mail.outbox)


def test_dsr1_duplicate_open_request_is_merged():
    first = _public(details="one")
    intake = ticket_create(
        type=RequestType.AUTOMATED,
        channel=Channel.PUBLIC_FORM,
        actor=None,
        email="GUEST@example.com",
        details="two",
    )
    assert not intake.created and intake.ticket.pk == first.pk
    first.refresh_from_db()
    assert first.merged_count == 1 and "two" in first.details
    assert Ticket.objects.count() == 1


def test_dsr1_export_at_most_once_per_24_hours():
    _public(type=RequestType.ACCESS)
    Ticket.objects.update(status=TicketStatus.FULFILLED)
    with pytest.raises(TicketRefused, match="less than 24 hours"):
        _public(type=RequestType.PORTABILITY)
    Ticket.objects.update(received_at=datetime.now(UTC) - timedelta(hours=25))
    assert _public(type=RequestType.ACCESS).status == TicketStatus.AWAITING_VERIFICATION


def test_dsr4_second_shine_the_light_in_a_year_is_flagged_with_the_first_answer_date():
    first = _public(type=RequestType.SHINE_THE_LIGHT)
    Ticket.objects.filter(pk=first.pk).update(
        status=TicketStatus.FULFILLED, fulfilled_at=first.received_at
    )
    second = _public(type=RequestType.SHINE_THE_LIGHT)
    assert second.repeat_of_id == first.pk
    assert first.reference in second.flag and "answered on" in second.flag


def test_dsr2_ccpa_receipt_is_confirmed_at_once():
    ticket = _public(jurisdiction=Jurisdiction.CCPA)
    assert ticket.confirmation_sent_at is not None
    assert any("confirmation" in m.subject.lower() for m in mail.outbox)


def test_dsr2_extension_once_before_first_due_with_reason_and_subject_told(privacy_officer):
    ticket = _public()
    with pytest.raises(TicketRefused, match="reason"):
        ticket_extend(ticket=ticket, actor=privacy_officer, reason=" ")
    late = ticket.first_due + timedelta(days=1)
    with pytest.raises(TicketRefused, match="has passed"):
        ticket_extend(ticket=ticket, actor=privacy_officer, reason="Complex", today=late)
    mail.outbox.clear()
    with _run_on_commit():
        ticket = ticket_extend(ticket=ticket, actor=privacy_officer, reason="Many archives")
    assert ticket.extended_due is not None and ticket.due_on == ticket.extended_due
    assert ticket.extended_due > ticket.first_due
    assert [m for m in mail.outbox if "Many archives" in m.body]
    with pytest.raises(TicketRefused, match="already extended"):
        ticket_extend(ticket=ticket, actor=privacy_officer, reason="again")


def test_dsr1_rejection_needs_a_listed_reason_and_text_for_other():
    ticket = _public()
    with pytest.raises(TicketRefused):
        ticket_reject(ticket=ticket, actor=None, reason=RejectionReason.OTHER)
    ticket = ticket_reject(ticket=ticket, actor=None, reason=RejectionReason.IDENTITY)
    assert ticket.status == TicketStatus.REJECTED
    with pytest.raises(TicketStateError):
        ticket_transition(ticket=ticket, to=TicketStatus.IN_PROGRESS, actor=None)


def test_staff_entry_needs_the_identity_check():
    with pytest.raises(TicketRefused, match="identity"):
        ticket_create(
            type=RequestType.AUTOMATED, channel=Channel.STAFF, actor=None, email="a@example.com"
        )
