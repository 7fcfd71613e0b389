"""Cookies, Do Not Track and Global Privacy Control (CON-4), recorded in the ledger (CON-3)."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from consent.cookies import CookieConsent
from consent.models import ConsentEvent, ConsentMethod, ConsentState

pytestmark = pytest.mark.django_db
PAGES = ["home", "privacy", "orders:passport_new", "accounts:login", "accounts:signup"]
GPC = {"HTTP_SEC_GPC": "1"}
DNT = {"HTTP_DNT": "1"}


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


def _cookie_names(client: Client) -> set[str]:
    return {name for name, morsel in client.cookies.items() if morsel.value}


def _consent(client: Client) -> CookieConsent:
    response = client.get(reverse("consent:cookies"))
    return response.wsgi_request.consent


def test_by_default_only_essential_cookies_and_a_banner_CON_4() -> None:
    client = Client()
    for name in PAGES:
        response = client.get(reverse(name))
        assert response.status_code == 200
    assert b'id="cookie-banner"' in response.content
    assert _cookie_names(client) <= set(django_settings.ESSENTIAL_COOKIES)
    assert not ConsentEvent.objects.exists()


@pytest.mark.parametrize(
    "headers, signal", [(GPC, "Global Privacy Control"), (DNT, "Do Not Track")]
)
def test_browser_signal_is_a_refusal_recorded_once_CON_4(headers, signal) -> None:
    client = Client(**headers)
    first = client.get(reverse("home"))
    assert b'id="cookie-banner"' not in first.content
    assert b'id="signal-notice"' in first.content and signal.encode() in first.content
    events = list(ConsentEvent.objects.order_by("purpose__key"))
    assert [(e.purpose.key, e.granted, e.method) for e in events] == [
        ("advertising", False, ConsentMethod.SIGNAL),
        ("analytics", False, ConsentMethod.SIGNAL),
    ]
    assert signal in events[0].note and events[0].visitor
    assert _cookie_names(client) <= set(django_settings.ESSENTIAL_COOKIES)
    for name in PAGES:
        assert client.get(reverse(name)).status_code == 200
    assert ConsentEvent.objects.count() == 2  # once per browser, not per page
    assert first["Vary"] and "Sec-GPC" in first["Vary"]


def test_signal_from_a_client_without_cookies_is_recorded_once_a_day_CON_4() -> None:
    for _ in range(5):
        Client(**GPC).get(reverse("home"))
    assert ConsentEvent.objects.count() == 2


def test_signal_overrides_an_earlier_yes_CON_4(settings) -> None:
    settings.ANALYTICS_SCRIPT_URL = "/static/js/analytics.js"
    client = Client()
    client.post(reverse("consent:cookies"), {"action": "accept_all", "source": "banner"})
    page = client.get(reverse("home"))
    assert b'src="/static/js/analytics.js"' in page.content
    assert b'id="cookie-banner"' not in page.content
    signalled = client.get(reverse("home"), **GPC)
    assert b"analytics.js" not in signalled.content
    state = ConsentState.objects.get(purpose__key="analytics")
    assert state.granted is False and state.event.method == ConsentMethod.SIGNAL


def test_banner_choice_is_recorded_with_evidence_CON_3(customer) -> None:
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 Chrome/156")
    client.force_login(customer)
    response = client.post(
        reverse("consent:cookies"),
        {"action": "save", "granted": ["analytics"], "source": "banner", "next": "/privacy/"},
    )
    assert response.status_code == 302 and response["Location"] == "/privacy/"
    events = {e.purpose.key: e for e in ConsentEvent.objects.all()}
    assert events["analytics"].granted and not events["advertising"].granted
    assert events["analytics"].method == ConsentMethod.BANNER
    assert events["analytics"].user == customer  # evidence of who, subject is the browser
    assert events["analytics"].subject.startswith("v:")
    assert "Chrome" in events["analytics"].user_agent
    assert events["analytics"].wording.text.startswith("Analytics")
    consent = _consent(client)
    assert consent.allows("analytics") and not consent.allows("advertising")
    # Changing the choice later records only what changed.
    client.post(reverse("consent:cookies"), {"action": "reject_all"})
    assert ConsentEvent.objects.count() == 3
    assert not _consent(client).allows("analytics")


def test_unknown_purpose_or_action_is_refused_and_changes_nothing_CON_4() -> None:
    client = Client()
    bad = client.post(reverse("consent:cookies"), {"action": "save", "granted": ["tracking"]})
    assert bad.status_code == 400 and b"Unknown cookie purpose: tracking" in bad.content
    worse = client.post(reverse("consent:cookies"), {"action": "sell_my_data"})
    assert worse.status_code == 400
    assert not ConsentEvent.objects.exists()
    assert django_settings.CONSENT_COOKIE_NAME not in _cookie_names(client)


def test_accepting_while_a_signal_is_sent_records_refusals_CON_4() -> None:
    client = Client(**GPC)
    client.post(reverse("consent:cookies"), {"action": "accept_all"})
    assert not ConsentState.objects.filter(granted=True).exists()
    assert not _consent(client).allows("analytics")


def test_forged_consent_cookie_counts_as_no_choice() -> None:
    client = Client()
    client.cookies[django_settings.CONSENT_COOKIE_NAME] = (
        "eyJ2IjoiYSIsImMiOnsiYW5hbHl0aWNzIjoxfX0:x:y"
    )
    page = client.get(reverse("home"))
    assert b'id="cookie-banner"' in page.content
    assert not page.wsgi_request.consent.allows("analytics")


def test_redirect_after_choice_stays_on_this_site() -> None:
    client = Client()
    response = client.post(
        reverse("consent:cookies"), {"action": "reject_all", "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("consent:cookies")


def test_signal_notice_can_be_dismissed() -> None:
    client = Client(**GPC)
    client.get(reverse("home"))
    client.post(reverse("consent:cookies"), {"action": "dismiss_notice", "next": "/"})
    page = client.get(reverse("home"))
    assert b'id="signal-notice"' not in page.content and b'id="cookie-banner"' not in page.content
    assert b"Global Privacy Control" in client.get(reverse("consent:cookies")).content
