"""A person's consents over the API: one click each way, signals honoured (CON-2..CON-4)."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings as django_settings

from consent.cookies import CookieConsent
from consent.models import (
    ConsentEvent,
    ConsentMethod,
    ConsentPurpose,
    ConsentState,
    Subscriber,
    SubscriberStatus,
)
from consent.selectors import consent_allows
from tests.api.conftest import api_client

pytestmark = pytest.mark.django_db

CONSENTS = "/api/v1/consents/"
SIGNAL_NOTE = "{} signal sent by the browser"


def _error(response) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return str(body["error"]["code"])


def _ua() -> dict[str, str]:
    # The ledger records a cookie-less client's signal once a day per address and user
    # agent (shared cache): a fresh user agent per test starts from a clean slate.
    return {"HTTP_USER_AGENT": f"api-test/{uuid.uuid4()}"}


def _row(body: dict, key: str) -> dict:
    return next(p for p in body["purposes"] if p["key"] == key)


def test_list_shows_the_choices_of_my_privacy_page(customer_api) -> None:
    ConsentPurpose.objects.create(
        key="surveys", name="Surveys", kind="other", wording="Invite me to short surveys."
    )
    body = customer_api.get(CONSENTS, **_ua()).json()
    assert {p["key"] for p in body["purposes"]} == {"marketing_email", "surveys"}
    newsletter = _row(body, "marketing_email")
    assert newsletter["granted"] is False and newsletter["since"] is None
    assert newsletter["wording"] == ConsentPurpose.objects.get(key="marketing_email").wording
    assert newsletter["is_marketing"] is True and newsletter["overridden_by_signal"] is False
    assert body["signal"] is None
    assert {c["key"]: c["allowed"] for c in body["cookies"]} == {
        "analytics": False,
        "advertising": False,
    }
    assert not ConsentEvent.objects.exists()


def test_grant_and_withdraw_with_evidence_CON_3(customer, customer_api) -> None:
    given = customer_api.post(f"{CONSENTS}marketing_email/grant/", **_ua())
    assert given.status_code == 200
    assert given.json()["granted"] is True and given.json()["since"]
    assert consent_allows(purpose="marketing_email", user=customer)
    event = ConsentEvent.objects.get(user=customer, purpose__key="marketing_email")
    assert event.method == ConsentMethod.API and event.granted
    assert event.ip_address == "127.0.0.1" and event.user_agent.startswith("api-test/")
    assert event.wording.text == event.purpose.wording
    assert Subscriber.objects.get(email=customer.email).status == SubscriberStatus.CONFIRMED

    withdrawn = customer_api.post(f"{CONSENTS}marketing_email/withdraw/")
    assert withdrawn.status_code == 200 and withdrawn.json()["granted"] is False
    assert not consent_allows(purpose="marketing_email", user=customer)
    last = ConsentEvent.objects.filter(user=customer).order_by("-created_at", "-id").first()
    assert last is not None and last.method == ConsentMethod.API and not last.granted


def test_withdrawing_the_newsletter_stops_all_marketing_CON_2(customer, customer_api) -> None:
    ConsentPurpose.objects.create(
        key="marketing_sms",
        name="Offers by text message",
        kind="marketing",
        is_marketing=True,
        wording="Send me offers by text message.",
    )
    assert customer_api.post(f"{CONSENTS}marketing_email/grant/").status_code == 200
    assert customer_api.post(f"{CONSENTS}marketing_sms/grant/").status_code == 200
    assert consent_allows(purpose="marketing_sms", user=customer)

    response = customer_api.post(f"{CONSENTS}marketing_email/withdraw/")
    assert response.status_code == 200
    assert not consent_allows(purpose="marketing_email", user=customer)
    assert not consent_allows(purpose="marketing_sms", user=customer)
    assert Subscriber.objects.get(email=customer.email).status == SubscriberStatus.UNSUBSCRIBED
    body = customer_api.get(CONSENTS).json()
    assert not any(p["granted"] for p in body["purposes"])


def test_unconfirmed_address_cannot_subscribe_409(customer, customer_api) -> None:
    customer.email_verified_at = None
    customer.save(update_fields=["email_verified_at"])
    response = customer_api.post(f"{CONSENTS}marketing_email/grant/")
    assert response.status_code == 409 and _error(response) == "consent_refused"
    assert "confirm your email" in response.json()["error"]["message"].lower()
    assert not ConsentEvent.objects.exists()


@pytest.mark.parametrize("key", ["nope", "analytics", "advertising", "portfolio", "a b"])
def test_unknown_cookie_and_per_image_purposes_are_404(customer_api, key) -> None:
    for action in ("grant", "withdraw"):
        response = customer_api.post(f"{CONSENTS}{key}/{action}/")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert not ConsentEvent.objects.exists()


def test_inactive_purpose_is_404(customer_api) -> None:
    ConsentPurpose.objects.create(
        key="old_offer", name="Old", kind="other", wording="x", active=False
    )
    assert customer_api.post(f"{CONSENTS}old_offer/grant/").status_code == 404


def test_anonymous_is_401(anon_api) -> None:
    assert anon_api.get(CONSENTS).status_code == 401
    response = anon_api.post(f"{CONSENTS}marketing_email/grant/")
    assert response.status_code == 401 and _error(response) == "not_authenticated"
    assert not ConsentEvent.objects.exists()


def test_a_choice_is_per_person_not_shared(customer, other_customer) -> None:
    api_client(customer).post(f"{CONSENTS}marketing_email/grant/")
    other = api_client(other_customer).get(CONSENTS).json()
    assert _row(other, "marketing_email")["granted"] is False


@pytest.mark.parametrize(
    "header, signal",
    [("HTTP_SEC_GPC", "Global Privacy Control"), ("HTTP_DNT", "Do Not Track")],
)
def test_signal_is_reported_honoured_and_recorded_as_the_web_does_CON_4(
    customer, customer_api, header, signal
) -> None:
    headers = {header: "1", **_ua()}
    response = customer_api.get(CONSENTS, **headers)
    assert "Sec-GPC" in response["Vary"] and "DNT" in response["Vary"]  # ConsentMiddleware
    assert "Set-Cookie" not in str(response.cookies.output())  # the API sets no cookie
    body = response.json()
    assert body["signal"] == signal
    assert all(c["allowed"] is False and c["overridden_by_signal"] for c in body["cookies"])
    assert not any(p["overridden_by_signal"] for p in body["purposes"])
    events = list(ConsentEvent.objects.order_by("purpose__key"))
    assert [(e.purpose.key, e.granted, e.method) for e in events] == [
        ("advertising", False, ConsentMethod.SIGNAL),
        ("analytics", False, ConsentMethod.SIGNAL),
    ]
    assert all(e.note == SIGNAL_NOTE.format(signal) for e in events)
    assert all(e.user_id == customer.pk and e.visitor for e in events)
    # Recorded once, not on every request (as the web does for a client without cookies).
    customer_api.get(CONSENTS, **headers)
    assert ConsentEvent.objects.count() == 2


def test_gpc_wins_when_both_signals_are_sent_CON_4(customer_api) -> None:
    body = customer_api.get(CONSENTS, HTTP_SEC_GPC="1", HTTP_DNT="1", **_ua()).json()
    assert body["signal"] == "Global Privacy Control"


def test_signal_overrides_an_earlier_yes_of_this_browser_CON_4(customer, customer_api) -> None:
    earlier = CookieConsent(
        visitor="browser-1",
        choices={"analytics": True, "advertising": True},
        decided_by="banner",
    )
    customer_api.cookies[django_settings.CONSENT_COOKIE_NAME] = earlier.cookie_value()
    plain = customer_api.get(CONSENTS, **_ua()).json()
    assert {c["key"]: c["allowed"] for c in plain["cookies"]} == {
        "analytics": True,
        "advertising": True,
    }
    signalled = customer_api.get(CONSENTS, HTTP_SEC_GPC="1", **_ua()).json()
    assert signalled["signal"] == "Global Privacy Control"
    assert {c["key"]: c["allowed"] for c in signalled["cookies"]} == {
        "analytics": False,
        "advertising": False,
    }
    state = ConsentState.objects.get(purpose__key="analytics", subject="v:browser-1")
    assert state.granted is False and state.event.method == ConsentMethod.SIGNAL
    assert state.event.user_id == customer.pk


def test_signal_on_a_grant_is_recorded_and_the_grant_stands_as_on_the_web_CON_4(
    customer, customer_api
) -> None:
    """A signal refuses cookies and trackers, not a newsletter asked for in person (the web
    page "My privacy choices" does the same)."""
    response = customer_api.post(f"{CONSENTS}marketing_email/grant/", HTTP_DNT="1", **_ua())
    assert response.status_code == 200 and response.json()["granted"] is True
    methods = set(ConsentEvent.objects.values_list("purpose__key", "method"))
    assert methods == {
        ("marketing_email", ConsentMethod.API),
        ("analytics", ConsentMethod.SIGNAL),
        ("advertising", ConsentMethod.SIGNAL),
    }
    assert not consent_allows(purpose="analytics", request=None, user=customer)


def test_consent_list_query_count_is_flat(customer_api, django_assert_max_num_queries) -> None:
    with django_assert_max_num_queries(8) as few:
        customer_api.get(CONSENTS)
    baseline = len(few.captured_queries)  # before the next request resets the query log
    for n in range(6):
        ConsentPurpose.objects.create(key=f"extra{n}", name=f"Extra {n}", kind="other", wording="x")
        customer_api.post(f"{CONSENTS}extra{n}/grant/")
    with django_assert_max_num_queries(baseline):
        assert len(customer_api.get(CONSENTS).json()["purposes"]) == 7
