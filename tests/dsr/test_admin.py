"""The ticket workbench in the admin (DSR-1 staff entry, DSR-2 clocks and decisions)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent
from consent.services.suppression import suppression_add, suppression_hash
from dsr.models import (
    AlertLevel,
    Channel,
    IdentityCheck,
    RejectionReason,
    RequestType,
    Ticket,
    TicketEventKind,
    TicketStatus,
)
from dsr.services.clocks import alert_horizon
from dsr.services.tickets import ticket_create, ticket_transition
from tests.conftest import login_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/dsr/ticket/"


def _ticket(*, email: str = "guest@example.com", type: str = RequestType.AUTOMATED, **kw) -> Ticket:
    """An open ticket from the public form, awaiting verification."""
    return ticket_create(
        type=type, channel=Channel.PUBLIC_FORM, actor=None, email=email, **kw
    ).ticket


def _due(ticket: Ticket, due: date) -> Ticket:
    Ticket.objects.filter(pk=ticket.pk).update(first_due=due)
    ticket.refresh_from_db()
    return ticket


def _verified(ticket: Ticket) -> Ticket:
    """Identity established, without starting the automatic fulfilment (set-up only)."""
    return ticket_transition(ticket=ticket, to=TicketStatus.VERIFIED, actor=None)


def _action_url(ticket: Ticket, name: str) -> str:
    return reverse("admin:dsr_ticket_action", args=[ticket.pk, name])


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def officer_client(privacy_officer):
    return login_client(privacy_officer, verified=True)


@pytest.fixture
def support_client(support):
    return login_client(support, verified=True)


def _row_of(html: str, reference: str) -> str:
    rows = re.findall(r"<tr>.*?</tr>", html, flags=re.S)
    return next(r for r in rows if reference in r)


# --- The list -----------------------------------------------------------------------------
def test_list_orders_open_by_due_date_with_coloured_days_left_and_summary_DSR_2(
    officer_client,
):
    today = timezone.localdate()
    later = _due(_ticket(email="later@example.com"), today + timedelta(days=20))
    overdue = _due(_ticket(email="late@example.com"), today - timedelta(days=2))
    at_risk = _due(
        _ticket(email="soon@example.com"), alert_horizon(today=today, calendar_name="IE")
    )
    answered = _due(_ticket(email="done@example.com"), today - timedelta(days=40))
    ticket_transition(ticket=answered, to=TicketStatus.REJECTED, actor=None)

    response = officer_client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    order = [html.index(t.reference) for t in (overdue, at_risk, later, answered)]
    assert order == sorted(order), "open first, the most urgent on top"
    assert "dsr-days-overdue" in _row_of(html, overdue.reference)
    assert "2 days overdue" in _row_of(html, overdue.reference)
    assert "dsr-days-at-risk" in _row_of(html, at_risk.reference)
    assert "dsr-days-ok" in _row_of(html, later.reference)
    assert "20 days left" in _row_of(html, later.reference)
    assert "dsr-days-closed" in _row_of(html, answered.reference)
    assert "soon@example.com" in _row_of(html, at_risk.reference)  # subject column
    summary = re.search(r'id="dsr-deadline-summary">(.*?)</p>', html, flags=re.S)
    assert summary and "1 overdue" in summary.group(1) and "1 at risk" in summary.group(1)
    # The colours come from a stylesheet (strict CSP: no inline styles).
    assert "admin/dsr/tickets.css" in html and "style=" not in _row_of(html, later.reference)


def test_deadline_assigned_and_status_filters_DSR_2(officer_client, privacy_officer):
    today = timezone.localdate()
    later = _due(_ticket(email="later@example.com"), today + timedelta(days=20))
    overdue = _due(_ticket(email="late@example.com"), today - timedelta(days=1))
    at_risk = _due(_ticket(email="soon@example.com"), today)
    officer_client.post(_action_url(later, "assign"), {"assign-assignee": privacy_officer.pk})

    def listed(query: str) -> set[str]:
        html = officer_client.get(CHANGELIST + query).content.decode()
        table = html[html.index('id="result_list"') :] if 'id="result_list"' in html else ""
        return {t.reference for t in (later, overdue, at_risk) if t.reference in table}

    assert listed("?deadline=overdue") == {overdue.reference}
    assert listed("?deadline=at_risk") == {at_risk.reference}
    assert listed("?deadline=later") == {later.reference}
    assert listed("?assigned=me") == {later.reference}
    assert listed("?assigned=nobody") == {overdue.reference, at_risk.reference}
    assert listed("?status__exact=awaiting_verification") == {
        later.reference,
        overdue.reference,
        at_risk.reference,
    }
    assert listed("?q=late%40example.com") == {overdue.reference}
    assert listed(f"?q={at_risk.reference}") == {at_risk.reference}


def test_list_query_count_does_not_grow_with_tickets_DSR_2(officer_client, privacy_officer):
    def queries() -> int:
        officer_client.get(CHANGELIST)  # warm the session and permission caches
        with CaptureQueriesContext(connection) as ctx:
            assert officer_client.get(CHANGELIST).status_code == 200
        return len(ctx)

    for n in range(2):
        t = _ticket(email=f"few{n}@example.com")
        ticket_create(
            type=RequestType.RESTRICTION,
            channel=Channel.PUBLIC_FORM,
            actor=None,
            user=UserFactory(),
        )
        Ticket.objects.filter(pk=t.pk).update(assignee=privacy_officer)
    few = queries()
    for n in range(10):
        _ticket(email=f"many{n}@example.com")
        ticket_create(
            type=RequestType.RESTRICTION,
            channel=Channel.PUBLIC_FORM,
            actor=None,
            user=UserFactory(),
        )
    Ticket.objects.update(assignee=privacy_officer)
    assert queries() == few


def test_tickets_cannot_be_deleted_or_edited_by_hand_DSR_2(officer_client):
    ticket = _ticket()
    response = officer_client.get(CHANGELIST)
    assert "delete_selected" not in response.content.decode()
    delete = officer_client.post(f"{CHANGELIST}{ticket.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    edit = officer_client.post(f"{CHANGELIST}{ticket.pk}/change/", {"status": "fulfilled"})
    assert edit.status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.AWAITING_VERIFICATION


# --- The change page ----------------------------------------------------------------------
def test_change_page_shows_history_blocked_reason_and_readable_outcome_DSR_2(officer_client):
    ticket = _ticket()
    Ticket.objects.filter(pk=ticket.pk).update(
        blocked_reason="Storage unreachable: step images.Photo retries",
        outcome={"counts": {"orders.Order": 3}, "kept": [{"model": "Invoice", "until": "2036"}]},
    )
    html = officer_client.get(f"{CHANGELIST}{ticket.pk}/change/").content.decode()
    assert 'id="dsr-blocked"' in html and "Storage unreachable" in html
    assert "<dt>orders.Order</dt><dd>3</dd>" in html
    assert "Invoice" in html and "2036" in html
    assert "Request received" in html and "Awaiting verification" in html  # history
    # An officer sees the decisions; the verify panel is there while unverified.
    for name in ("verify", "extend", "reject", "assign", "note"):
        assert f'id="action-{name}"' in html


def test_support_cannot_extend_or_reject_but_a_privacy_officer_can_DSR_2(
    support_client, officer_client, committed
):
    ticket = _ticket()
    page = support_client.get(f"{CHANGELIST}{ticket.pk}/change/").content.decode()
    assert 'id="action-extend"' not in page and 'id="action-reject"' not in page
    assert 'id="action-assign"' in page and 'id="action-verify"' in page

    refused = support_client.post(_action_url(ticket, "extend"), {"extend-reason": "Busy"})
    assert refused.status_code == 403
    refused = support_client.post(
        _action_url(ticket, "reject"), {"reject-reason": RejectionReason.UNFOUNDED}
    )
    assert refused.status_code == 403
    ticket.refresh_from_db()
    assert ticket.extended_due is None and ticket.status == TicketStatus.AWAITING_VERIFICATION

    mail.outbox.clear()
    with committed():
        done = officer_client.post(
            _action_url(ticket, "extend"), {"extend-reason": "Three archives to search"}
        )
    assert done.status_code == 302 and done.url == f"{CHANGELIST}{ticket.pk}/change/"
    ticket.refresh_from_db()
    assert ticket.extended_due is not None and ticket.extension_reason == "Three archives to search"
    assert any("Three archives to search" in m.body for m in mail.outbox)  # the subject told
    assert any("now due on" in m for m in _messages(done))
    assert AuditEvent.objects.filter(action=AuditAction.DSR_EXTENDED).exists()


def test_bad_input_and_refusals_show_as_messages_never_errors_DSR_2(officer_client):
    ticket = _ticket()
    page = f"{CHANGELIST}{ticket.pk}/change/"

    empty = officer_client.post(_action_url(ticket, "extend"), {"extend-reason": ""}, follow=True)
    assert empty.status_code == 200
    assert any("Extend the deadline" in m and "required" in m for m in _messages(empty))

    other = officer_client.post(
        _action_url(ticket, "reject"), {"reject-reason": RejectionReason.OTHER}, follow=True
    )
    assert other.status_code == 200
    assert any("Explain the reason" in m for m in _messages(other))

    officer_client.post(_action_url(ticket, "extend"), {"extend-reason": "Complex"})
    again = officer_client.post(
        _action_url(ticket, "extend"), {"extend-reason": "More"}, follow=True
    )
    assert any("already extended" in m for m in _messages(again))
    assert again.redirect_chain[-1][0] == page

    customer = UserFactory(email="not-staff@example.com")
    wrong = officer_client.post(
        _action_url(ticket, "assign"), {"assign-assignee": customer.pk}, follow=True
    )
    assert any("valid choice" in m for m in _messages(wrong))

    ticket_transition(ticket=ticket, to=TicketStatus.REJECTED, actor=None)
    stale = officer_client.post(
        _action_url(ticket, "verify"),
        {"verify-method": IdentityCheck.STAFF_PHONE, "verify-note": "Called back"},
        follow=True,
    )
    assert stale.status_code == 200
    assert any("cannot become verified" in m for m in _messages(stale))

    assert officer_client.get(_action_url(ticket, "extend")).status_code == 405
    assert officer_client.post(_action_url(ticket, "nonsense"), {}).status_code == 403
    missing = reverse("admin:dsr_ticket_action", args=[999999, "note"])
    assert officer_client.post(missing, {"note-note": "x"}).status_code == 404


def test_reject_assign_note_close_buttons_call_their_services_DSR_2(
    officer_client, privacy_officer, support, committed
):
    ticket = _ticket()
    officer_client.post(_action_url(ticket, "assign"), {"assign-assignee": support.pk})
    officer_client.post(_action_url(ticket, "note"), {"note-note": "Asked for the order number."})
    mail.outbox.clear()
    with committed():
        officer_client.post(
            _action_url(ticket, "reject"),
            {"reject-reason": RejectionReason.OTHER, "reject-text": "Not our customer."},
        )
    ticket.refresh_from_db()
    assert ticket.assignee == support
    assert ticket.status == TicketStatus.REJECTED and ticket.rejection_text == "Not our customer."
    assert any("Not our customer." in m.body for m in mail.outbox)
    officer_client.post(_action_url(ticket, "close"), {"close-note": ""})
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    events = list(ticket.events.values_list("kind", "actor"))
    assert (TicketEventKind.ASSIGNED, privacy_officer.pk) in events
    assert (TicketEventKind.NOTE, privacy_officer.pk) in events
    assert (TicketEventKind.TRANSITION, privacy_officer.pk) in events


def test_fulfil_with_an_answer_tells_the_subject_DSR_2(officer_client, support_client, committed):
    ticket = _verified(_ticket(type=RequestType.WITHDRAW_CONSENT))
    data = {"fulfil-note": "All your consents are withdrawn."}
    assert support_client.post(_action_url(ticket, "fulfil"), data).status_code == 403
    mail.outbox.clear()
    with committed():
        officer_client.post(_action_url(ticket, "fulfil"), data)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED
    assert ticket.outcome_note == "All your consents are withdrawn."
    assert any("All your consents are withdrawn." in m.body for m in mail.outbox)


def test_fulfil_is_not_offered_where_fulfilment_is_automatic_DSR_2(officer_client):
    erasure = _verified(_ticket(type=RequestType.ERASURE))
    html = officer_client.get(f"{CHANGELIST}{erasure.pk}/change/").content.decode()
    assert 'id="action-fulfil"' not in html


# --- Staff entry (DSR-1) ------------------------------------------------------------------
def test_staff_entry_needs_a_subject_and_the_identity_check_DSR_1(officer_client):
    assert officer_client.get(f"{CHANGELIST}add/").status_code == 200
    response = officer_client.post(
        f"{CHANGELIST}add/",
        {"type": RequestType.AUTOMATED, "jurisdiction": "gdpr", "identity_check": ""},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Give the subject" in html and "This field is required" in html
    assert not Ticket.objects.exists()


def test_staff_entry_records_identity_and_links_the_account_DSR_1(
    officer_client, privacy_officer, customer
):
    response = officer_client.post(
        f"{CHANGELIST}add/",
        {
            "email": customer.email.upper(),
            "type": RequestType.RESTRICTION,
            "jurisdiction": "gdpr",
            "details": "Letter of 2 March: please stop using my photos until resolved.",
            "identity_check": IdentityCheck.STAFF_LETTER,
            "identity_note": "Signed letter; address matches the account.",
        },
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response.url == f"{CHANGELIST}{ticket.pk}/change/"
    assert ticket.user == customer and ticket.channel == Channel.STAFF
    assert ticket.entered_by == privacy_officer
    assert ticket.identity_check == IdentityCheck.STAFF_LETTER
    assert ticket.identity_note == "Signed letter; address matches the account."
    assert ticket.verified_at is not None
    assert ticket.status not in (TicketStatus.RECEIVED, TicketStatus.AWAITING_VERIFICATION)


def test_verify_button_records_how_staff_checked_identity_DSR_1(officer_client, privacy_officer):
    ticket = _ticket(type=RequestType.RESTRICTION)
    officer_client.post(
        _action_url(ticket, "verify"),
        {"verify-method": IdentityCheck.STAFF_PHONE, "verify-note": "Confirmed last order date."},
    )
    ticket.refresh_from_db()
    assert ticket.identity_check == IdentityCheck.STAFF_PHONE and ticket.verified_at
    event = ticket.events.get(to_status=TicketStatus.VERIFIED)
    assert event.actor == privacy_officer and "last order date" in event.note


# --- Other admin pages --------------------------------------------------------------------
def test_suppression_list_shows_only_a_hash_prefix_CON_2(officer_client, settings):
    settings.SUPPRESSION_KEY = "test-key-for-the-suppression-list-0123456789"
    suppression_add(email="gone@example.com", source="erasure")
    digest = suppression_hash("gone@example.com")
    html = officer_client.get("/admin/consent/marketingsuppression/").content.decode()
    assert digest[:12] in html and digest not in html and "gone@example.com" not in html


def test_alert_levels_reach_the_list_once_swept_DSR_2(officer_client):
    """The sweep's stored level and the list's colour agree (both from clocks.py)."""
    from dsr.services.clocks import tickets_alert_sweep

    today = timezone.localdate()
    ticket = _due(_ticket(), today - timedelta(days=1))
    tickets_alert_sweep(now=timezone.now())
    ticket.refresh_from_db()
    assert ticket.alert_level == AlertLevel.OVERDUE
    html = officer_client.get(CHANGELIST).content.decode()
    assert "dsr-days-overdue" in _row_of(html, ticket.reference)


def test_erasure_waits_for_orders_then_an_officer_approves_it_DSR_3(
    officer_client, support_client, customer
):
    """ORD-4/DSR-3: an order in progress blocks the erasure until staff decide."""
    from orders.models import Order, OrderKind, OrderStatus

    order = Order.objects.create(
        kind=OrderKind.PASSPORT, customer=customer, document="us_passport", amount_minor=700
    )
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID)
    ticket = ticket_create(
        type=RequestType.ERASURE,
        channel=Channel.ACCOUNT,
        actor=customer,
        user=customer,
        identity_check=IdentityCheck.LOGIN,
    ).ticket
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    html = officer_client.get(f"{CHANGELIST}{ticket.pk}/change/").content.decode()
    assert 'id="dsr-blocked"' in html and order.reference in html
    assert 'id="action-approve_erasure"' in html

    assert support_client.post(_action_url(ticket, "approve_erasure"), {}).status_code == 403
    busy = officer_client.post(_action_url(ticket, "approve_erasure"), {}, follow=True)
    assert busy.status_code == 200
    assert any(order.reference in m for m in _messages(busy))
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.AWAITING_APPROVAL

    Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)
    done = officer_client.post(_action_url(ticket, "approve_erasure"), {}, follow=True)
    assert any("erasure approved" in m for m in _messages(done))
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.IN_PROGRESS and not ticket.blocked_reason
    assert ticket.erasure_steps.exists()


# --- Staff decisions for the manual types (rights.py) ---------------------------------------
def _account_ticket(user, type: str, **kw) -> Ticket:
    return ticket_create(
        type=type,
        channel=Channel.ACCOUNT,
        actor=user,
        user=user,
        identity_check=IdentityCheck.LOGIN,
        **kw,
    ).ticket


def _rectify_data(form_values: dict[str, str], **changes: str) -> dict[str, str]:
    return {f"rectify-{k}": v for k, v in {**form_values, **changes}.items()}


def test_rectification_shows_current_values_and_applies_the_change_DSR_1(
    officer_client, support_client, customer, committed
):
    from dsr.admin.forms import RectificationForm

    ticket = _account_ticket(
        customer, RequestType.RECTIFICATION, details="My city is Cork, not Dublin."
    )
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    customer.city = "Dublin"
    customer.save(update_fields=["city"])
    html = officer_client.get(f"{CHANGELIST}{ticket.pk}/change/").content.decode()
    assert 'id="action-rectify"' in html and "My city is Cork, not Dublin." in html
    assert 'name="rectify-city"' in html and 'value="Dublin"' in html
    ticket.refresh_from_db()
    current = RectificationForm(ticket=ticket).current
    assert current["city"] == "Dublin" and current["country"] == "IE"

    url = _action_url(ticket, "rectify")
    unchanged = officer_client.post(url, _rectify_data(current, note="n"), follow=True)
    assert any("Change at least one field" in m for m in _messages(unchanged))
    blanked = officer_client.post(url, {"rectify-city": "Cork", "rectify-note": "n"}, follow=True)
    assert blanked.status_code == 200 and any("not valid" in m for m in _messages(blanked))
    data = _rectify_data(current, city="Cork", note="Checked against the order address.")
    assert support_client.post(url, data).status_code == 403

    mail.outbox.clear()
    with committed():
        done = officer_client.post(url, data, follow=True)
    assert any("corrected city" in m for m in _messages(done))
    customer.refresh_from_db()
    ticket.refresh_from_db()
    assert customer.city == "Cork" and customer.full_name == current["full_name"]
    assert ticket.status == TicketStatus.FULFILLED
    assert any("Checked against the order address." in m.body for m in mail.outbox)


def test_objection_to_other_processing_is_decided_with_a_reason_DSR_1(officer_client, customer):
    ticket = _account_ticket(customer, RequestType.OBJECTION, details="Stop profiling me.")
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    html = officer_client.get(f"{CHANGELIST}{ticket.pk}/change/").content.decode()
    assert 'id="action-objection"' in html and 'id="action-fulfil"' not in html
    url = _action_url(ticket, "objection")
    empty = officer_client.post(url, {"objection-decision": "uphold"}, follow=True)
    assert any("required" in m for m in _messages(empty))
    officer_client.post(
        url, {"objection-decision": "uphold", "objection-reason": "No overriding grounds."}
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED
    assert ticket.outcome["decision"] == "upheld"
    assert customer.processing_restrictions.filter(lifted_at__isnull=True).exists()


def test_automated_decision_review_is_recorded_and_shown_DSR_1(officer_client, customer):
    ticket = _account_ticket(customer, RequestType.AUTOMATED)
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    officer_client.post(
        _action_url(ticket, "automated_review"),
        {"automated_review-outcome": "A retoucher checked the photo: it meets the rules."},
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED
    html = officer_client.get(f"{CHANGELIST}{ticket.pk}/change/").content.decode()
    assert "<dt>human_review</dt><dd>A retoucher checked the photo" in html


def test_restriction_is_lifted_with_a_reason_by_a_privacy_officer_only_DSR_1(
    officer_client, support_client, customer
):
    _account_ticket(customer, RequestType.RESTRICTION)
    restriction = customer.processing_restrictions.get()
    page = f"/admin/dsr/processingrestriction/{restriction.pk}/change/"
    lift = reverse("admin:dsr_processingrestriction_lift", args=[restriction.pk])

    assert 'id="dsr-lift"' not in support_client.get(page).content.decode()
    assert support_client.post(lift, {"reason": "x"}).status_code == 403
    assert 'id="dsr-lift"' in officer_client.get(page).content.decode()
    listing = officer_client.get("/admin/dsr/processingrestriction/?state=active")
    assert customer.email in listing.content.decode()

    empty = officer_client.post(lift, {"reason": " "}, follow=True)
    assert any("Give the reason" in m for m in _messages(empty))
    done = officer_client.post(lift, {"reason": "The accuracy check is complete."}, follow=True)
    assert any("lifted" in m for m in _messages(done))
    restriction.refresh_from_db()
    assert not restriction.active and restriction.lift_reason == "The accuracy check is complete."
    again = officer_client.post(lift, {"reason": "again"}, follow=True)
    assert any("already lifted" in m for m in _messages(again))


def test_a_privacy_officer_reports_a_child_account_ACC_5(officer_client, support_client, customer):
    url = reverse("admin:dsr_ticket_report_child")
    assert support_client.get(url).status_code == 403
    assert officer_client.get(url).status_code == 200
    missing = officer_client.post(url, {"user": customer.pk, "note": ""})
    assert missing.status_code == 200 and not Ticket.objects.exists()
    done = officer_client.post(url, {"user": customer.pk, "note": "Parent's email of 3 March."})
    ticket = Ticket.objects.get()
    assert done.status_code == 302 and done.url == f"{CHANGELIST}{ticket.pk}/change/"
    assert ticket.child and ticket.type == RequestType.ERASURE
    assert ticket.status == TicketStatus.IN_PROGRESS
