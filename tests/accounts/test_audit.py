"""The audit log: written with the change, append-only, never holding secrets."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from accounts.models import AuditAction, AuditEvent, User
from accounts.services.audit import audit_log_write
from accounts.services.staff import user_update_by_staff
from tests.accounts.helpers import STRONG_PASSWORD, login_data, signup_data

pytestmark = pytest.mark.django_db


def test_audit_rows_are_append_only(customer):
    event = audit_log_write(
        actor=customer,
        action=AuditAction.LOGIN,
        subject=customer,
        ip_address="192.0.2.5",
        detail={"k": "v"},
    )
    for attempt in (
        event.save,
        event.delete,
        lambda: AuditEvent.objects.update(ip_address=None),
        lambda: AuditEvent.objects.filter(pk=event.pk).update(detail={}),
        lambda: AuditEvent.objects.all().delete(),
        lambda: AuditEvent.objects.filter(action=AuditAction.LOGIN).delete(),
    ):
        with pytest.raises(PermissionError):
            attempt()
    event = AuditEvent.objects.get(pk=event.pk)
    assert event.ip_address == "192.0.2.5"
    assert event.detail == {"k": "v"}


def test_anonymous_actor_is_stored_as_none(customer):
    from django.contrib.auth.models import AnonymousUser

    event = audit_log_write(
        actor=AnonymousUser(), action=AuditAction.LOGIN_FAILED, subject=customer
    )
    assert event.actor is None


def test_staff_edit_and_its_audit_row_commit_together(support, customer):
    customer.full_name = "Changed"
    user_update_by_staff(
        actor=support, user=customer, changed_fields=["full_name"], ip_address="192.0.2.9"
    )
    customer.refresh_from_db()
    assert customer.full_name == "Changed"
    event = AuditEvent.objects.get(action=AuditAction.STAFF_USER_EDIT)
    assert (event.actor, event.subject, event.ip_address) == (support, customer, "192.0.2.9")


def test_a_failed_staff_edit_leaves_no_audit_row(support, customer, other_customer):
    customer.email = other_customer.email.upper()  # collides once normalised
    with pytest.raises(IntegrityError), transaction.atomic():
        user_update_by_staff(
            actor=support, user=customer, changed_fields=["email"], ip_address=None
        )
    assert not AuditEvent.objects.filter(action=AuditAction.STAFF_USER_EDIT).exists()
    assert User.objects.get(pk=customer.pk).email == "casey@example.com"


def test_audit_rows_never_contain_passwords(client, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/signup/", signup_data())
    client.post("/accounts/login/", login_data(customer.email, "typo-password-123"))
    client.post("/accounts/login/", login_data(customer.email))
    assert AuditEvent.objects.count() >= 3
    for event in AuditEvent.objects.all():
        text = str(event.detail)
        assert STRONG_PASSWORD not in text
        assert "typo-password-123" not in text
        assert "correct-horse" not in text


def test_audit_row_records_the_client_address(client, customer, settings):
    settings.CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    client.post(
        "/accounts/login/",
        login_data(customer.email),
        headers={"X-Real-IP": "198.51.100.23", "X-Forwarded-For": "10.0.0.1"},
    )
    event = AuditEvent.objects.get(action=AuditAction.LOGIN)
    assert event.ip_address == "198.51.100.23"


def test_invalid_client_ip_header_is_stored_as_none(client, customer, settings):
    settings.CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    client.post(
        "/accounts/login/",
        login_data(customer.email),
        headers={"X-Real-IP": "not-an-ip; DROP TABLE"},
    )
    assert AuditEvent.objects.get(action=AuditAction.LOGIN).ip_address is None
