"""The other rights (dsr/services/rights.py): restriction, objection, withdrawal of consent,
automated decisions, rectification, Shine the Light (DSR-1, DSR-4, CON-2)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent, Notification, User
from consent.models import (
    Audience,
    AudienceMember,
    AudienceRule,
    ConsentMethod,
    ConsentPurpose,
    ConsentState,
    PurposeKind,
    Recipient,
    RecipientRole,
    Subscriber,
    SubscriberStatus,
    subject_key,
)
from consent.selectors import consent_allows
from consent.services.ledger import consent_record
from consent.services.register import disclosure_record
from dsr.models import (
    Channel,
    IdentityCheck,
    ProcessingRestriction,
    RejectionReason,
    RequestType,
    Ticket,
    TicketStatus,
)
from dsr.selectors import processing_restricted
from dsr.services.rights import (
    automated_explanation,
    automated_review_complete,
    objection_decide,
    rectifiable_fields,
    rectification_apply,
    restriction_lift,
)
from dsr.services.tickets import TicketRefused, ticket_create, ticket_verify
from images.passport_specs import DOCUMENT_SPECS
from tests.consent.marketing_helpers import subscriber_make

pytestmark = pytest.mark.django_db


def account_ticket(committed: Any, user: User, type: str, **kw: Any) -> Ticket:
    """A request from the account's privacy page (identity: the login), fulfilment started."""
    with committed():
        ticket = ticket_create(
            type=type,
            channel=Channel.ACCOUNT,
            actor=user,
            user=user,
            identity_check=IdentityCheck.LOGIN,
            **kw,
        ).ticket
    ticket.refresh_from_db()
    return ticket


def guest_ticket(committed: Any, email: str, type: str, **kw: Any) -> Ticket:
    """A public-form request whose email code was entered."""
    with committed():
        ticket = ticket_create(
            type=type, channel=Channel.PUBLIC_FORM, actor=None, email=email, **kw
        )
        ticket_verify(ticket=ticket.ticket, actor=None, method=IdentityCheck.EMAIL_CODE)
    ticket.ticket.refresh_from_db()
    return ticket.ticket


def mails_to(address: str) -> list[Any]:
    return [m for m in mail.outbox if m.to == [address]]


# --- Restriction (Art. 18) ----------------------------------------------------------------------


def test_restriction_is_applied_at_once_audited_and_the_subject_told_DSR_1(
    committed, customer
) -> None:
    ticket = account_ticket(committed, customer, RequestType.RESTRICTION)
    assert ticket.status == TicketStatus.FULFILLED
    restriction = ProcessingRestriction.objects.get(ticket=ticket)
    assert restriction.user == customer and restriction.email == customer.email
    assert restriction.active and processing_restricted(user=customer)
    assert processing_restricted(email=customer.email.upper())
    assert ticket.outcome["restriction"] == restriction.pk
    for stops in ("orders", "marketing", "portfolio", "keep your data"):
        assert stops in ticket.outcome_note
    audit = AuditEvent.objects.get(action=AuditAction.DSR_RESTRICTED)
    assert audit.subject == customer and audit.detail["ticket"] == ticket.reference
    done = [m for m in mails_to(customer.email) if "is done" in m.subject]
    assert done and "now restricted" in done[0].body


def test_lifting_needs_a_reason_and_the_permission_and_tells_the_subject_DSR_1(
    committed, customer, support, privacy_officer
) -> None:
    ticket = account_ticket(committed, customer, RequestType.RESTRICTION)
    restriction = ProcessingRestriction.objects.get(ticket=ticket)
    with pytest.raises(TicketRefused, match="reason"):
        restriction_lift(restriction=restriction, actor=privacy_officer, reason="  ")
    with pytest.raises(TicketRefused, match="permission"):
        restriction_lift(restriction=restriction, actor=support, reason="Accuracy checked.")
    assert processing_restricted(user=customer)
    mail.outbox.clear()
    with committed():
        restriction_lift(
            restriction=restriction, actor=privacy_officer, reason="We checked the data: correct."
        )
    restriction.refresh_from_db()
    assert restriction.lifted_at and restriction.lifted_by == privacy_officer
    assert not processing_restricted(user=customer)
    audit = AuditEvent.objects.get(action=AuditAction.DSR_RESTRICTION_LIFTED)
    assert audit.actor == privacy_officer and audit.detail["ticket"] == ticket.reference
    (message,) = mails_to(customer.email)
    assert "lifted" in message.subject and "We checked the data: correct." in message.body
    assert Notification.objects.filter(user=customer, title__contains="restriction lifted")
    with pytest.raises(TicketRefused, match="already"):
        restriction_lift(restriction=restriction, actor=privacy_officer, reason="Again.")


def test_guest_restriction_by_email_covers_the_account_with_that_address_DSR_1(
    committed, customer
) -> None:
    ticket = guest_ticket(committed, customer.email.upper(), RequestType.RESTRICTION)
    assert ticket.status == TicketStatus.FULFILLED
    assert processing_restricted(user=customer)
    assert processing_restricted(email="casey@example.com")


# --- Objection (Art. 21) ------------------------------------------------------------------------


def test_objection_to_direct_marketing_is_honoured_at_once_CON_2(committed, customer) -> None:
    subscriber_make(customer.email, user=customer)
    audience = Audience.objects.create(name="Buyers", rule=AudienceRule.PASSPORT_CUSTOMERS)
    AudienceMember.objects.create(audience=audience, user=customer, activity_at=timezone.now())
    assert consent_allows(purpose="marketing_email", user=customer)
    ticket = account_ticket(committed, customer, RequestType.OBJECTION, direct_marketing=True)
    assert ticket.status == TicketStatus.FULFILLED
    assert not consent_allows(purpose="marketing_email", user=customer)
    assert Subscriber.objects.get(email=customer.email).status == SubscriberStatus.UNSUBSCRIBED
    assert not AudienceMember.objects.filter(user=customer).exists()
    assert ticket.outcome["audiences_left"] == 1 and ticket.outcome["subscriptions_ended"] == 1
    assert "no more marketing email" in ticket.outcome_note


def test_guest_objection_to_direct_marketing_by_address_CON_2(committed) -> None:
    subscriber_make("reader@example.com")
    ticket = guest_ticket(
        committed, "Reader@Example.com", RequestType.OBJECTION, direct_marketing=True
    )
    assert ticket.status == TicketStatus.FULFILLED
    assert not consent_allows(purpose="marketing_email", email="reader@example.com")


def test_other_objection_waits_for_a_reasoned_staff_decision_DSR_1(
    committed, customer, other_customer, privacy_officer, support
) -> None:
    ticket = account_ticket(
        committed, customer, RequestType.OBJECTION, details="Stop analysing my orders."
    )
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    assert any("waits for a decision" in m.subject for m in mails_to(customer.email))
    with pytest.raises(TicketRefused, match="reason"):
        objection_decide(ticket=ticket, actor=privacy_officer, uphold=False, reason=" ")
    with pytest.raises(TicketRefused, match="permission"):
        objection_decide(ticket=ticket, actor=support, uphold=False, reason="Security.")
    with committed():
        objection_decide(
            ticket=ticket, actor=privacy_officer, uphold=False, reason="Fraud prevention logs."
        )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REJECTED
    assert ticket.rejection_reason == RejectionReason.OTHER
    assert "Compelling legitimate grounds" in ticket.rejection_text
    assert "Fraud prevention logs." in ticket.rejection_text
    assert not processing_restricted(user=customer)

    # Upheld: the processing stops through the restriction every path checks.
    second = account_ticket(committed, other_customer, RequestType.OBJECTION, details="Stop.")
    with committed():
        objection_decide(
            ticket=second, actor=privacy_officer, uphold=True, reason="Your interest prevails."
        )
    second.refresh_from_db()
    assert second.status == TicketStatus.FULFILLED
    assert second.outcome["decision"] == "upheld"
    assert "Your interest prevails." in second.outcome_note
    assert processing_restricted(user=other_customer)
    assert ProcessingRestriction.objects.get(ticket=second).user == other_customer


# --- Withdrawal of consent ----------------------------------------------------------------------


def test_withdrawal_of_consent_withdraws_every_granted_consent_in_the_ledger_DSR_1(
    committed, customer
) -> None:
    subscriber_make(customer.email, user=customer)
    surveys = ConsentPurpose.objects.create(
        key="surveys", name="Customer surveys", kind=PurposeKind.OTHER, wording="Ask me."
    )
    consent_record(
        purpose="surveys", granted=True, method=ConsentMethod.FORM, user=customer, wording="Ask me."
    )
    # A browser's cookie choice (the account only as evidence) is not the person's to list.
    consent_record(
        purpose="analytics", granted=True, method=ConsentMethod.BANNER, user=customer, visitor="v1"
    )
    ticket = account_ticket(committed, customer, RequestType.WITHDRAW_CONSENT)
    assert ticket.status == TicketStatus.FULFILLED
    assert not consent_allows(purpose="marketing_email", user=customer)
    assert not consent_allows(purpose="surveys", user=customer)
    names = {item["purpose"] for item in ticket.outcome["withdrawn"]}
    assert names == {"marketing_email", "surveys"}
    assert surveys.name in ticket.outcome_note and "Cookie choices" in ticket.outcome_note
    assert ConsentState.objects.get(subject=subject_key(visitor="v1")).granted
    assert not ConsentState.objects.filter(
        subject=subject_key(user_id=customer.pk), granted=True
    ).exists()


def test_withdrawal_with_nothing_granted_says_so_plainly(committed, customer) -> None:
    ticket = account_ticket(committed, customer, RequestType.WITHDRAW_CONSENT)
    assert ticket.status == TicketStatus.FULFILLED and ticket.outcome["withdrawn"] == []
    assert "no consent with us that was still given" in ticket.outcome_note


def test_staff_entered_withdrawal_is_recorded_as_staff_with_the_ticket(
    committed, customer, support
) -> None:
    subscriber_make(customer.email, user=customer)
    with committed():
        ticket = ticket_create(
            type=RequestType.WITHDRAW_CONSENT,
            channel=Channel.STAFF,
            actor=support,
            user=customer,
            identity_check=IdentityCheck.STAFF_LETTER,
            identity_note="Signed letter of 3 March.",
        ).ticket
    state = ConsentState.objects.select_related("event").get(
        subject=subject_key(user_id=customer.pk), purpose__key="marketing_email"
    )
    assert not state.granted and state.event.method == ConsentMethod.STAFF
    assert state.event.actor == support and ticket.reference in state.event.note


# --- Automated decisions (Art. 22) ------------------------------------------------------------


def test_automated_decision_explained_then_reviewed_by_a_person_DSR_1(
    committed, customer, privacy_officer
) -> None:
    ticket = account_ticket(committed, customer, RequestType.AUTOMATED, details="Order ABC.")
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    explanation = ticket.outcome["explanation"]
    assert explanation == automated_explanation()
    for spec in DOCUMENT_SPECS.values():
        assert spec.label in explanation
    assert "10 degrees" in explanation and "does not identify you" in explanation
    assert "We could not find a face." in explanation  # the refusals, as customers see them
    (waiting,) = [m for m in mails_to(customer.email) if "waits" in m.subject]
    assert "does not identify you" in waiting.body
    with pytest.raises(TicketRefused):
        automated_review_complete(ticket=ticket, actor=privacy_officer, outcome="")
    with committed():
        automated_review_complete(
            ticket=ticket, actor=privacy_officer, outcome="The crop meets the UK rules."
        )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED
    assert ticket.outcome["human_review"] == "The crop meets the UK rules."
    assert ticket.outcome_note.startswith(explanation[:40])
    assert "The crop meets the UK rules." in ticket.outcome_note


# --- Rectification (Art. 16) ----------------------------------------------------------------------


def test_rectification_waits_for_staff_and_is_applied_through_accounts_DSR_1(
    committed, customer, privacy_officer
) -> None:
    assert "email" not in rectifiable_fields() and "password" not in rectifiable_fields()
    assert {"full_name", "street_address", "country"} <= set(rectifiable_fields())
    ticket = account_ticket(
        committed, customer, RequestType.RECTIFICATION, details="My name is Casey Carter."
    )
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    with pytest.raises(TicketRefused, match="email"):
        rectification_apply(
            ticket=ticket, actor=privacy_officer, changes={"email": "new@example.com"}
        )
    with pytest.raises(TicketRefused, match="phone"):
        rectification_apply(ticket=ticket, actor=privacy_officer, changes={"phone": "call me"})
    with pytest.raises(TicketRefused, match="already"):
        rectification_apply(
            ticket=ticket, actor=privacy_officer, changes={"full_name": customer.full_name}
        )
    customer.refresh_from_db()
    assert customer.full_name == "Casey Customer" and customer.phone == ""
    with committed():
        rectification_apply(
            ticket=ticket,
            actor=privacy_officer,
            changes={"full_name": "Casey Carter", "city": "Cork"},
            note="Checked against the signed letter.",
        )
    customer.refresh_from_db()
    assert customer.full_name == "Casey Carter" and customer.city == "Cork"
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED and ticket.outcome["fields"] == [
        "city",
        "full_name",
    ]
    assert "Checked against the signed letter." in ticket.outcome_note
    rectified = AuditEvent.objects.get(action=AuditAction.DSR_RECTIFIED)
    assert rectified.detail["fields"] == ["city", "full_name"]
    assert "Casey Carter" not in str(rectified.detail)  # field names only
    edit = AuditEvent.objects.get(action=AuditAction.STAFF_USER_EDIT)
    assert edit.actor == privacy_officer and edit.subject == customer


# --- Shine the Light (DSR-4) --------------------------------------------------------------------


@pytest.fixture
def recipients(db) -> tuple[Recipient, Recipient]:
    def make(name: str, address: str) -> Recipient:
        return Recipient.objects.create(
            name=name,
            address=address,
            role=RecipientRole.CONTROLLER,
            service="Direct mail",
            country="US",
        )

    return (
        make("Catalog Partners Inc.", "1 Market St, San Francisco, CA 94105"),
        make("Coupon Club LLC", "200 Main St, Fresno, CA 93721"),
    )


def _disclose(actor: Any, recipient: Recipient, when: datetime, cats: list[str], **kw: Any) -> None:
    disclosure_record(
        actor=actor,
        recipient=recipient,
        categories=cats,
        purpose="marketing",
        description="Names and addresses for a mailing.",
        disclosed_at=when,
        **kw,
    )


def test_shine_the_light_lists_last_years_direct_marketing_disclosures_DSR_4(
    committed, customer, other_customer, privacy_officer, recipients
) -> None:
    catalog, coupons = recipients
    last_year = timezone.localtime().year - 1
    mid = timezone.make_aware(datetime(last_year, 6, 15, 12))
    _disclose(
        privacy_officer, catalog, mid, ["contact"], for_direct_marketing=True, users=[customer]
    )
    _disclose(
        privacy_officer,
        catalog,
        mid + timedelta(days=30),
        ["identity"],
        for_direct_marketing=True,
        emails=[customer.email],
    )
    _disclose(privacy_officer, coupons, mid, ["contact"], users=[customer])  # not for marketing
    _disclose(
        privacy_officer,
        coupons,
        timezone.now() - timedelta(minutes=1),
        ["contact"],
        for_direct_marketing=True,
        users=[customer],
    )  # this year: not asked about
    _disclose(
        privacy_officer,
        coupons,
        mid,
        ["contact"],
        for_direct_marketing=True,
        users=[other_customer],
    )
    ticket = account_ticket(committed, customer, RequestType.SHINE_THE_LIGHT)
    assert ticket.status == TicketStatus.FULFILLED
    assert ticket.outcome == {
        "year": last_year,
        "disclosures": [
            {
                "recipient": "Catalog Partners Inc.",
                "address": "1 Market St, San Francisco, CA 94105",
                "categories": ["Contact details", "Identity"],
            }
        ],
    }
    assert f"In {last_year} we disclosed" in ticket.outcome_note
    assert "1 Market St, San Francisco" in ticket.outcome_note
    assert "Coupon Club" not in ticket.outcome_note
    (done,) = [m for m in mails_to(customer.email) if "is done" in m.subject]
    assert "Catalog Partners Inc." in done.body


def test_shine_the_light_with_no_disclosures_says_so_plainly_DSR_4(committed) -> None:
    ticket = guest_ticket(committed, "calguest@example.com", RequestType.SHINE_THE_LIGHT)
    year = timezone.localtime(ticket.received_at).year - 1
    assert ticket.status == TicketStatus.FULFILLED
    assert ticket.outcome == {"year": year, "disclosures": []}
    assert ticket.outcome_note == (
        f"In {year} we disclosed none of your personal data to third parties for their "
        "direct marketing."
    )


def test_second_shine_the_light_this_year_is_answered_and_stays_flagged_DSR_4(
    committed, customer
) -> None:
    first = account_ticket(committed, customer, RequestType.SHINE_THE_LIGHT)
    assert first.status == TicketStatus.FULFILLED
    second = account_ticket(committed, customer, RequestType.SHINE_THE_LIGHT)
    assert second.status == TicketStatus.FULFILLED
    assert second.repeat_of == first and first.reference in second.flag
    assert f"You already asked this year ({first.reference})" in second.outcome_note
