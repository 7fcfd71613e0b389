"""A child's account (ACC-5): reported by staff, erased at once without a waiting period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent, User
from dsr.models import Channel, IdentityCheck, RequestType, Ticket, TicketStatus
from dsr.services.erasure import dsr_child_report, erasure_leftovers
from dsr.services.tickets import TicketRefused, ticket_create
from images.models import Photo
from orders.models import Order, OrderStatus
from tests.conftest import login_client
from tests.dsr.test_erasure import close_account, rich_customer

pytestmark = pytest.mark.django_db


def test_child_report_erases_at_once_and_cancels_orders_ACC_5(
    settings: Any, committed: Any, privacy_officer: User
) -> None:
    settings.DSR_CLOSE_ACCOUNT_WAIT_DAYS = 30  # the closure wait does not apply to a child
    rich = rich_customer("kid@example.com", name="Kim Kid")
    paid = Order.objects.create(
        kind="retouch", customer=rich.user, status=OrderStatus.PAID, paid_at=timezone.now()
    )
    started = Order.objects.create(kind="retouch", customer=rich.user, status="in_progress")
    with committed():
        ticket = dsr_child_report(
            user=rich.user, actor=privacy_officer, note="Parent's email of 3 March"
        )
    ticket.refresh_from_db()
    assert ticket.child and ticket.channel == Channel.STAFF
    assert ticket.identity_check == IdentityCheck.STAFF_REPORT
    assert ticket.status == TicketStatus.FULFILLED  # no waiting period, no approval
    assert Order.objects.get(pk=paid.pk).status == OrderStatus.CANCELLED
    # Work already started cannot be cancelled by the order machine: erased all the same.
    assert ticket.outcome["queued_work"]["orders_cancelled"] == [paid.reference]
    assert ticket.outcome["queued_work"]["orders_not_cancellable"] == [started.reference]
    assert not Photo.objects.filter(order__customer=rich.user).exists()
    assert AuditEvent.objects.filter(
        action=AuditAction.DSR_CHILD_REPORTED,
        actor=privacy_officer,
        detail__ticket=ticket.reference,
    ).exists()
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email) == {}


def test_child_report_needs_the_permission_and_a_note_ACC_5(
    support: User, privacy_officer: User, customer: User
) -> None:
    with pytest.raises(TicketRefused):
        dsr_child_report(user=customer, actor=support, note="A message")
    with pytest.raises(TicketRefused):
        dsr_child_report(user=customer, actor=privacy_officer, note="  ")
    with pytest.raises(TicketRefused):
        dsr_child_report(user=support, actor=privacy_officer, note="Staff are adults")
    assert not Ticket.objects.exists()
    assert User.objects.get(pk=customer.pk).is_active


def test_child_report_takes_over_a_closure_waiting_its_period_ACC_5(
    settings: Any, committed: Any, privacy_officer: User
) -> None:
    settings.DSR_CLOSE_ACCOUNT_WAIT_DAYS = 30
    rich = rich_customer("kid2@example.com", name="Kai Kid")
    with committed():
        waiting = ticket_create(
            type=RequestType.ERASURE,
            channel=Channel.ACCOUNT,
            actor=rich.user,
            user=rich.user,
            identity_check=IdentityCheck.LOGIN,
            not_before=timezone.now() + timedelta(days=30),
        ).ticket
    assert Ticket.objects.get(pk=waiting.pk).status == TicketStatus.VERIFIED
    with committed():
        ticket = dsr_child_report(user=rich.user, actor=privacy_officer, note="School told us")
    assert ticket.pk == waiting.pk  # merged into the open erasure, not a second one
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED and ticket.child
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email) == {}


def test_admin_action_on_the_user_list_confirms_then_erases_ACC_5(
    committed: Any, privacy_officer: User, support: User
) -> None:
    rich = rich_customer("kid3@example.com", name="Kit Kid")
    url = "/admin/accounts/user/"
    staff = login_client(support, verified=True)
    page = staff.get(url)
    assert page.status_code == 200 and b"Reported as under 13" not in page.content
    officer = login_client(privacy_officer, verified=True)
    assert b"Reported as under 13" in officer.get(url).content
    form = {"action": "report_child", "_selected_action": [rich.user.pk]}
    confirm = officer.post(url, form)
    assert confirm.status_code == 200 and b"Report and erase now" in confirm.content
    erasures = Ticket.objects.filter(type=RequestType.ERASURE)
    assert not erasures.exists()  # nothing happens before the confirmation
    missing = officer.post(url, {**form, "confirm": "1", "note": ""})
    assert missing.status_code == 400 and not erasures.exists()
    with committed():
        done = officer.post(url, {**form, "confirm": "1", "note": "Parent phoned"})
    assert done.status_code == 302
    ticket = erasures.get(user=rich.user)
    assert ticket.child and ticket.status == TicketStatus.FULFILLED
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email) == {}


def test_closing_an_account_is_not_a_child_report(committed: Any) -> None:
    rich = rich_customer("adult@example.com", name="Ada Adult")
    ticket = close_account(rich.user, committed)
    assert not ticket.child and ticket.identity_check == IdentityCheck.LOGIN
    assert not AuditEvent.objects.filter(action=AuditAction.DSR_CHILD_REPORTED).exists()
