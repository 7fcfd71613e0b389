"""The marketing suppression list is honoured (CON-2, DSR-3): a campaign never reaches a
suppressed address, whenever it was suppressed; only the person's own new, confirmed
opt-in lifts it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import roles
from accounts.models import User
from consent.models import CampaignSend, Subscriber, SubscriberStatus
from consent.services.campaigns import campaign_start
from consent.services.marketing import marketing_subscribe_user
from consent.services.suppression import email_suppressed, suppression_add
from tests.consent.marketing_helpers import SELLER_ADDRESS, campaign_make, subscriber_make
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
SITE = "https://photos.example.org"


@pytest.fixture
def marketer(settings: Any, roles_present: None) -> User:
    settings.SELLER_ADDRESS = SELLER_ADDRESS
    settings.SELLER_NAME = "Clearframe Photo Ltd"
    settings.SITE_URL = SITE
    settings.ALLOWED_HOSTS = ["testserver", "photos.example.org"]
    settings.MARKETING_FROM_EMAIL = "news@photos.example.org"
    return UserFactory(email="mia@example.com", role=roles.MARKETING)


def _send(campaign: Any, marketer: User, capture: Any) -> list[str]:
    mail.outbox.clear()
    with capture(execute=True):
        campaign_start(campaign=campaign, actor=marketer)
    return sorted(m.to[0] for m in mail.outbox if m.subject == campaign.subject)


def test_campaign_never_reaches_a_suppressed_address_CON_2_DSR_3(
    marketer, django_capture_on_commit_callbacks
) -> None:
    subscriber_make("erased@example.com")  # e.g. an old list brought back after an erasure
    subscriber_make("Later@Example.com")
    subscriber_make("kept@example.com")
    suppression_add(email="ERASED@example.com", source="erasure")
    campaign = campaign_make()
    with django_capture_on_commit_callbacks(execute=False) as started:
        assert campaign_start(campaign=campaign, actor=marketer) == 3
    suppression_add(email="later@example.com", source="erasure")  # after the start
    for callback in started:
        callback()
    assert sorted(m.to[0] for m in mail.outbox) == ["kept@example.com"]
    skipped = CampaignSend.objects.filter(campaign=campaign, status="skipped")
    assert sorted(s.subscriber.email.lower() for s in skipped) == [
        "erased@example.com",
        "later@example.com",
    ]
    assert all("suppressed" in s.last_error for s in skipped)


def _link(body: str, fragment: str) -> str:
    match = re.search(r"https://\S*" + re.escape(fragment) + r"\S*", body)
    assert match, body
    return match.group(0).removeprefix(SITE)


def test_new_double_opt_in_lifts_the_suppression_only_when_confirmed_CON_2_DSR_3(
    marketer, django_capture_on_commit_callbacks
) -> None:
    address = "returning@example.com"
    suppression_add(email=address, source="erasure")
    client = Client()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("consent:newsletter"), {"email": address})
    assert response.status_code == 200
    (confirmation,) = mail.outbox  # asking is allowed: the link is transactional
    assert confirmation.to == [address]
    assert email_suppressed(address)  # the request alone changes nothing
    assert Subscriber.objects.get(email=address).status == SubscriberStatus.PENDING
    confirm = _link(confirmation.body, "/consent/newsletter/confirm/")
    assert client.post(confirm).status_code == 200
    assert not email_suppressed(address)
    assert _send(campaign_make(), marketer, django_capture_on_commit_callbacks) == [address]


def test_account_holder_subscribing_their_verified_address_lifts_it_CON_2_DSR_3(
    marketer, customer, django_capture_on_commit_callbacks
) -> None:
    suppression_add(email=customer.email, source="erasure")
    subscriber_make(customer.email, user=customer)
    assert _send(campaign_make(), marketer, django_capture_on_commit_callbacks) == []
    marketing_subscribe_user(user=customer)
    assert not email_suppressed(customer.email)
    assert _send(campaign_make(subject="Now"), marketer, django_capture_on_commit_callbacks) == [
        customer.email
    ]
