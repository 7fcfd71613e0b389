"""My privacy choices: every consent one click to give or withdraw (CON-2, CON-3)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from consent.models import (
    ConsentEvent,
    ConsentMethod,
    ConsentPurpose,
    Subscriber,
    SubscriberStatus,
)
from consent.selectors import consent_allows
from tests.conftest import login_client

pytestmark = pytest.mark.django_db
TOGGLE = "consent:mine_toggle"


def test_page_needs_login() -> None:
    response = Client().get(reverse("consent:mine"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_newsletter_given_and_withdrawn_with_one_click_each_CON_2_CON_3(customer) -> None:
    client = login_client(customer)
    page = client.get(reverse("consent:mine"))
    assert page.status_code == 200 and b"Not allowed" in page.content
    given = client.post(reverse(TOGGLE, args=["marketing_email"]), {"action": "grant"})
    assert given.status_code == 302
    assert consent_allows(purpose="marketing_email", user=customer)
    subscriber = Subscriber.objects.get(email=customer.email)
    assert subscriber.status == SubscriberStatus.CONFIRMED  # a verified address: no second email
    page = client.get(reverse("consent:mine"))
    assert b"Allowed" in page.content and b"Withdraw" in page.content

    withdrawn = client.post(reverse(TOGGLE, args=["marketing_email"]), {"action": "withdraw"})
    assert withdrawn.status_code == 302
    assert not consent_allows(purpose="marketing_email", user=customer)
    subscriber.refresh_from_db()
    assert subscriber.status == SubscriberStatus.UNSUBSCRIBED
    history = client.get(reverse("consent:mine")).content.decode()
    assert history.count("Withdrawn") >= 1 and history.count("Given") >= 1
    events = ConsentEvent.objects.filter(user=customer, purpose__key="marketing_email")
    assert [e.granted for e in events.order_by("created_at", "id")] == [True, False]
    assert all(e.method == ConsentMethod.FORM for e in events)


def test_unverified_address_cannot_subscribe_from_the_page(customer) -> None:
    customer.email_verified_at = None
    customer.save(update_fields=["email_verified_at"])
    response = login_client(customer).post(
        reverse(TOGGLE, args=["marketing_email"]), {"action": "grant"}
    )
    assert response.status_code == 400 and b"confirm your email" in response.content.lower()
    assert not ConsentEvent.objects.exists()


def test_bad_input_is_refused_and_changes_nothing(customer) -> None:
    client = login_client(customer)
    assert client.post(reverse(TOGGLE, args=["nope"]), {"action": "grant"}).status_code == 404
    # Cookie and per-image purposes are not chosen here.
    assert client.post(reverse(TOGGLE, args=["analytics"]), {"action": "grant"}).status_code == 404
    assert client.post(reverse(TOGGLE, args=["portfolio"]), {"action": "grant"}).status_code == 404
    bad = client.post(reverse(TOGGLE, args=["marketing_email"]), {"action": "maybe"})
    assert bad.status_code == 400
    assert client.get(reverse(TOGGLE, args=["marketing_email"])).status_code == 405
    assert not ConsentEvent.objects.exists()


def test_staff_added_purpose_appears_and_toggles(customer) -> None:
    ConsentPurpose.objects.create(
        key="surveys", name="Surveys", kind="other", wording="Invite me to short surveys."
    )
    client = login_client(customer)
    assert b"Invite me to short surveys." in client.get(reverse("consent:mine")).content
    client.post(reverse(TOGGLE, args=["surveys"]), {"action": "grant"})
    assert consent_allows(purpose="surveys", user=customer)
    client.post(reverse(TOGGLE, args=["surveys"]), {"action": "withdraw"})
    assert not consent_allows(purpose="surveys", user=customer)


def test_page_lists_only_the_users_own_history(customer, other_customer) -> None:
    login_client(other_customer).post(
        reverse(TOGGLE, args=["marketing_email"]), {"action": "grant"}
    )
    page = login_client(customer).get(reverse("consent:mine")).content.decode()
    assert "No choices recorded yet." in page
