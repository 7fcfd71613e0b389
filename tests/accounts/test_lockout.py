"""Lockout after repeated failures, per (account, address), spoof-proof (ACC-3)."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from accounts.models import AuditAction, AuditEvent
from tests.accounts.helpers import login_data

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
BAD = "not-the-password-1"
ATTACKER = "203.0.113.66"
VICTIM = "198.51.100.7"


@pytest.fixture
def behind_proxy(settings):
    settings.CLIENT_IP_HEADER = "HTTP_X_REAL_IP"


def _logged_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def _fail(client: Client, email: str, times: int, **headers: str) -> list[int]:
    return [
        client.post(LOGIN, login_data(email, BAD), headers=headers).status_code
        for _ in range(times)
    ]


def test_five_failures_lock_out_even_the_right_password_ACC_3(client, customer, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    statuses = _fail(client, customer.email, 5)
    assert statuses[:4] == [400] * 4
    assert statuses[4] == 429

    response = client.post(LOGIN, login_data(customer.email))

    assert response.status_code == 429
    assert b"Too many failed attempts" in response.content
    assert not _logged_in(client)


def test_four_failures_do_not_lock_out(client, customer):
    _fail(client, customer.email, 4)
    assert client.post(LOGIN, login_data(customer.email)).status_code == 302
    assert _logged_in(client)


def test_case_variants_count_as_the_same_account_ACC_3(client, customer):
    variants = [
        "casey@example.com",
        "CASEY@example.com",
        " Casey@Example.com ",
        "casey@EXAMPLE.COM",
        "CaSeY@example.com",
    ]
    for variant in variants:
        client.post(LOGIN, login_data(variant, BAD))

    assert client.post(LOGIN, login_data("casey@example.com")).status_code == 429
    assert client.post(LOGIN, login_data("CASEY@EXAMPLE.COM")).status_code == 429
    assert not _logged_in(client)


def test_rotating_spoofed_forwarded_for_does_not_escape_lockout_ACC_3(
    client, customer, behind_proxy
):
    for i in range(5):
        client.post(
            LOGIN,
            login_data(customer.email, BAD),
            headers={"X-Real-IP": ATTACKER, "X-Forwarded-For": f"10.9.8.{i}"},
        )

    response = client.post(
        LOGIN,
        login_data(customer.email),
        headers={"X-Real-IP": ATTACKER, "X-Forwarded-For": "10.9.8.200"},
    )

    assert response.status_code == 429
    assert not _logged_in(client)


def test_spoofed_victim_address_does_not_lock_out_the_victim_ACC_3(customer, behind_proxy):
    attacker = Client()
    statuses = _fail(
        attacker, customer.email, 6, **{"X-Real-IP": ATTACKER, "X-Forwarded-For": VICTIM}
    )
    assert statuses[-1] == 429  # the attacker's own address is locked out

    victim = Client()
    response = victim.post(LOGIN, login_data(customer.email), headers={"X-Real-IP": VICTIM})

    assert response.status_code == 302
    assert _logged_in(victim)


def test_lockout_is_per_address(customer, behind_proxy):
    attacker = Client()
    _fail(attacker, customer.email, 5, **{"X-Real-IP": ATTACKER})
    assert (
        attacker.post(
            LOGIN, login_data(customer.email), headers={"X-Real-IP": ATTACKER}
        ).status_code
        == 429
    )

    elsewhere = Client()
    response = elsewhere.post(LOGIN, login_data(customer.email), headers={"X-Real-IP": VICTIM})
    assert response.status_code == 302


def test_other_user_from_the_same_address_is_not_locked_out_ACC_3(client, customer, other_customer):
    _fail(client, customer.email, 5)
    assert client.post(LOGIN, login_data(customer.email)).status_code == 429

    neighbour = Client()
    response = neighbour.post(LOGIN, login_data(other_customer.email))

    assert response.status_code == 302
    assert neighbour.session[SESSION_KEY] == str(other_customer.pk)


def test_lockout_writes_an_audit_row_ACC_3(client, customer, behind_proxy):
    _fail(client, customer.email, 5, **{"X-Real-IP": ATTACKER})
    client.post(LOGIN, login_data(customer.email), headers={"X-Real-IP": ATTACKER})

    lockouts = AuditEvent.objects.filter(action=AuditAction.LOCKOUT)
    assert lockouts.exists()
    assert all(e.subject_id == customer.pk for e in lockouts)
    assert {e.ip_address for e in lockouts} == {ATTACKER}
    failed = AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED, subject=customer)
    assert failed.count() == 4


def test_successful_login_resets_the_failure_count(client, customer):
    _fail(client, customer.email, 4)
    assert client.post(LOGIN, login_data(customer.email)).status_code == 302
    client.post("/accounts/logout/")
    _fail(client, customer.email, 4)
    assert client.post(LOGIN, login_data(customer.email)).status_code == 302
