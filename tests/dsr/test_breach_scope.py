"""Who a breach affects, and confirming it with the scope frozen (BRE-1, BRE-2).

The scope rules are built on the registry and the data; confirming freezes them as one
recipient row and one in-site notice per affected account (unique: exactly once), and
stores the users' clock of 1 business day.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent, RequestLog, User
from dsr import calendar
from dsr.models import BreachNotice, Incident, IncidentRecipient, IncidentStatus
from dsr.services.breach import IncidentRefused, incident_confirm, incident_create
from dsr.services.breach_scope import (
    ScopeError,
    breach_scope_guest_emails,
    breach_scope_preview,
    breach_scope_users,
)
from images.models import Photo
from orders.models import Order, OrderKind
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
END = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)


def _window(kind: str) -> dict[str, str]:
    return {"kind": kind, "start": START.isoformat(), "end": END.isoformat()}


def _upload(*, customer: User | None, at: datetime, guest_email: str = "") -> Photo:
    order = Order.objects.create(
        kind=OrderKind.PASSPORT, customer=customer, guest_email=guest_email, document="us_passport"
    )
    Order.objects.filter(pk=order.pk).update(created_at=at)
    photo = Photo.objects.create(order=order, scan="clean", status="ready")
    Photo.objects.filter(pk=photo.pk).update(created_at=at)
    return photo


def _emails(scope: dict) -> set[str]:
    return set(breach_scope_users(scope=scope).values_list("email", flat=True))


def _incident(actor: User, **fields) -> Incident:
    defaults = {"message_subject": "About your photos", "message_body": "Plain words."}
    return incident_create(
        actor=actor,
        title="Storage bucket exposed",
        aware_at=timezone.now() - timedelta(hours=2),
        description="A bucket was public for a week.",
        **{**defaults, **fields},
    )


def test_uploads_window_finds_customers_and_guests_who_uploaded_then_BRE_1(
    customer, other_customer
):
    _upload(customer=customer, at=START + timedelta(days=1))
    _upload(customer=other_customer, at=END + timedelta(hours=1))  # just after the window
    _upload(customer=None, at=START + timedelta(days=2), guest_email="Guest@Example.com")
    _upload(customer=None, at=START - timedelta(days=2), guest_email="early@example.com")
    scope = {"rules": [_window("uploads")]}
    assert _emails(scope) == {customer.email}
    assert breach_scope_guest_emails(scope=scope) == ["guest@example.com"]
    preview = breach_scope_preview(scope=scope)
    assert (preview.users, preview.guests, preview.total) == (1, 1, 2)
    assert preview.sample == [customer.email, "guest@example.com"]


def test_orders_and_activity_windows_BRE_1(customer, other_customer):
    order = Order.objects.create(kind=OrderKind.PASSPORT, customer=customer, document="us_passport")
    Order.objects.filter(pk=order.pk).update(created_at=START + timedelta(hours=3))
    RequestLog.objects.create(
        request_id=uuid.uuid4(),
        time=START + timedelta(days=3),
        user_id=other_customer.pk,
        ip_address="203.0.113.9",
        method="GET",
        path="/",
        status=200,
    )
    assert _emails({"rules": [_window("orders")]}) == {customer.email}
    assert _emails({"rules": [_window("activity")]}) == {other_customer.email}
    # The union of the rules.
    both = {"rules": [_window("orders"), _window("activity")]}
    assert _emails(both) == {customer.email, other_customer.email}


def test_list_rule_maps_addresses_with_accounts_to_them_and_keeps_others_as_guests_BRE_1(
    customer, other_customer
):
    scope = {
        "rules": [
            {"kind": "list", "emails": ["CASEY@example.com", "stranger@example.org"]},
            {"kind": "list", "user_ids": [other_customer.pk]},
        ]
    }
    assert _emails(scope) == {customer.email, other_customer.email}
    assert breach_scope_guest_emails(scope=scope) == ["stranger@example.org"]


def test_categories_rule_finds_holders_through_the_registry_BRE_1(customer, other_customer):
    _upload(customer=customer, at=START)
    found = _emails({"rules": [{"kind": "categories", "categories": ["image"]}]})
    assert customer.email in found and other_customer.email not in found


def test_everyone_rule_finds_every_active_account_BRE_1(customer, other_customer):
    UserFactory(email="gone@example.com", is_active=False)
    assert _emails({"rules": [{"kind": "everyone"}]}) == {customer.email, other_customer.email}


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ({}, "empty"),
        ({"rules": []}, "empty"),
        ({"rules": [{"kind": "uploads", "start": "2026-03-02"}]}, "start and an end"),
        (
            {"rules": [{"kind": "orders", "start": END.isoformat(), "end": START.isoformat()}]},
            "after",
        ),
        ({"rules": [{"kind": "categories", "categories": []}]}, "category"),
        ({"rules": [{"kind": "bogus"}]}, "Unknown"),
    ],
)
def test_bad_scope_rules_are_refused_with_a_reason_BRE_1(scope, message):
    with pytest.raises(ScopeError, match=message):
        breach_scope_users(scope=scope)


def test_confirm_freezes_recipients_and_notices_and_stores_the_users_clock_BRE_1_BRE_2(
    privacy_officer, customer, other_customer
):
    _upload(customer=customer, at=START + timedelta(days=1))
    _upload(customer=None, at=START + timedelta(days=1), guest_email="guest@example.com")
    incident = _incident(privacy_officer, scope={"rules": [_window("uploads")]})
    assert incident.authority_due == calendar.breach_authority_due(incident.aware_at)
    now = timezone.now()
    incident = incident_confirm(incident=incident, actor=privacy_officer, now=now)

    # Confirmed, and (once the fan-out is started in the same transaction) notifying.
    assert incident.status in (IncidentStatus.CONFIRMED, IncidentStatus.NOTIFYING)
    assert incident.confirmed_at == now and incident.confirmed_by == privacy_officer
    assert incident.users_due == calendar.breach_users_due(now, incident.calendar)
    recipients = IncidentRecipient.objects.filter(incident=incident)
    assert set(recipients.values_list("email", "user_id")) == {
        (customer.email, customer.pk),
        ("guest@example.com", None),
    }
    assert set(recipients.values_list("status", flat=True)) == {"pending"}
    assert list(
        BreachNotice.objects.filter(incident=incident).values_list("user_id", flat=True)
    ) == [customer.pk]
    event = AuditEvent.objects.filter(action=AuditAction.BREACH_CONFIRMED).order_by("id").first()
    assert event is not None and event.actor == privacy_officer
    assert event.detail["incident"] == incident.reference and event.detail["recipients"] == 2

    # A snapshot: a later upload in the window does not change who is told.
    _upload(customer=other_customer, at=START + timedelta(days=2))
    assert recipients.count() == 2
    with pytest.raises(IncidentRefused, match="already confirmed"):
        incident_confirm(incident=incident, actor=privacy_officer)


def test_exactly_once_per_recipient_is_a_database_constraint_BRE_2(privacy_officer, customer):
    incident = _incident(
        privacy_officer, scope={"rules": [{"kind": "list", "emails": [customer.email]}]}
    )
    incident_confirm(incident=incident, actor=privacy_officer)
    with pytest.raises(IntegrityError), transaction.atomic():
        IncidentRecipient.objects.create(incident=incident, email=customer.email)
    with pytest.raises(IntegrityError), transaction.atomic():
        BreachNotice.objects.create(incident=incident, user=customer)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {
                "scope": {"rules": [{"kind": "list", "emails": ["a@example.com"]}]},
                "message_body": "",
            },
            "message",
        ),
        ({"scope": {}}, "empty"),
        ({"scope": {"rules": [_window("uploads")]}}, "finds nobody"),
    ],
)
def test_confirm_is_refused_without_message_or_with_an_empty_scope_BRE_1(
    privacy_officer, fields, reason
):
    incident = _incident(privacy_officer, **fields)
    with pytest.raises(IncidentRefused, match=reason):
        incident_confirm(incident=incident, actor=privacy_officer)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.DRAFT and incident.users_due is None
    assert not IncidentRecipient.objects.filter(incident=incident).exists()
    assert not BreachNotice.objects.filter(incident=incident).exists()


def test_message_is_drafted_from_the_register_fields_in_plain_language_BRE_1(privacy_officer):
    """Art. 34(2): what happened, which data, consequences, measures, advice, contact."""
    incident = _incident(
        privacy_officer,
        message_subject="",
        message_body="",
        data_categories=["image", "contact"],
        consequences="Someone may have seen your photos.",
        measures_taken="The bucket is private again.",
        advice="Nothing to do; tell us if you see your photos elsewhere.",
        contact_point="privacy@example.com",
    )
    body = incident.message_body
    for part in (
        "A bucket was public for a week.",
        "Images, Contact details.",
        "Someone may have seen your photos.",
        "The bucket is private again.",
        "tell us if you see your photos elsewhere",
        "privacy@example.com",
    ):
        assert part in body
    assert incident.message_subject
