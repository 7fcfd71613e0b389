"""Cookies end to end in Chromium: a Global Privacy Control browser gets only essential
cookies and the ledger shows the signal; an ordinary browser loads nothing optional until
it says yes, and the site works with everything declined. CON-3, CON-4."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import Browser, BrowserContext, Page, expect

from consent.models import ConsentEvent, ConsentMethod, ConsentState

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PROBE = "/static/js/analytics-probe.js"
PAGES = ["/", "/orders/passport/", "/privacy/", "/accounts/signup/", "/accounts/login/"]


@pytest.fixture
def site(e2e_settings: Any, celery_worker_thread: Any) -> Any:
    # A first-party analytics integration point, so "loaded only after consent" is observable.
    e2e_settings.ANALYTICS_SCRIPT_URL = PROBE
    return e2e_settings


def _context(browser: Browser, site: Any, **kwargs: Any) -> BrowserContext:
    context = browser.new_context(base_url=site.SITE_URL, **kwargs)
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def requests_seen() -> list[str]:
    return []


def _watch(page: Page, seen: list[str]) -> Page:
    page.on("request", lambda request: seen.append(request.url))
    return page


@pytest.fixture
def gpc_page(browser: Browser, site: Any, requests_seen: list[str]) -> Iterator[Page]:
    context = _context(browser, site, extra_http_headers={"Sec-GPC": "1"})
    try:
        yield _watch(context.new_page(), requests_seen)
    finally:
        context.close()


@pytest.fixture
def plain_page(browser: Browser, site: Any, requests_seen: list[str]) -> Iterator[Page]:
    context = _context(browser, site)
    try:
        yield _watch(context.new_page(), requests_seen)
    finally:
        context.close()


def _cookie_names(page: Page) -> set[str]:
    return {c["name"] for c in page.context.cookies()}


def test_gpc_browser_gets_only_essential_cookies_and_the_ledger_shows_the_signal_CON_4(
    gpc_page: Page, site: Any, requests_seen: list[str], screenshot: Any
) -> None:
    page = gpc_page
    page.goto("/")
    expect(page.locator("#signal-notice")).to_contain_text("Global Privacy Control")
    expect(page.locator("#cookie-banner")).to_have_count(0)
    screenshot(page, "consent-gpc-notice")
    for path in PAGES:
        response = page.goto(path)
        assert response is not None and response.status == 200
    # Even accepting everything on the settings page cannot switch it on under GPC.
    page.goto("/consent/cookies/")
    expect(page.locator("#signal-honoured")).to_be_visible()
    page.get_by_role("button", name="Save my choice").click()

    assert _cookie_names(page) <= set(django_settings.ESSENTIAL_COOKIES)
    assert not any(PROBE in url for url in requests_seen)
    assert all(url.startswith(site.SITE_URL) for url in requests_seen)
    events = ConsentEvent.objects.filter(method=ConsentMethod.SIGNAL)
    assert sorted(events.values_list("purpose__key", flat=True)) == ["advertising", "analytics"]
    assert all("Global Privacy Control" in e.note and e.ip_address for e in events)
    visitor = {e.visitor for e in events}
    assert len(visitor) == 1  # one browser, recorded once however many pages it saw
    assert not ConsentState.objects.filter(granted=True).exists()


def test_nothing_optional_loads_before_consent_and_declining_keeps_the_site_working_CON_4(
    plain_page: Page, site: Any, requests_seen: list[str], screenshot: Any
) -> None:
    page = plain_page
    page.goto("/")
    banner = page.locator("#cookie-banner")
    expect(banner).to_be_visible()
    screenshot(page, "consent-banner")
    assert not any(PROBE in url for url in requests_seen)
    banner.get_by_role("button", name="Reject all").click()
    expect(page.locator("#cookie-banner")).to_have_count(0)
    for path in PAGES:
        response = page.goto(path)
        assert response is not None and response.status == 200
        expect(page.locator("#cookie-banner")).to_have_count(0)
    assert not any(PROBE in url for url in requests_seen)
    assert _cookie_names(page) <= set(django_settings.ESSENTIAL_COOKIES)
    refusals = ConsentEvent.objects.filter(method=ConsentMethod.BANNER, granted=False)
    assert refusals.count() == 2

    # Saying yes later, on the settings page, loads the first-party script from then on.
    page.goto("/consent/cookies/")
    page.get_by_label("Analytics cookies", exact=False).check()
    page.get_by_role("button", name="Save my choice").click()
    page.goto("/")
    assert any(PROBE in url for url in requests_seen)
    grant = ConsentEvent.objects.get(purpose__key="analytics", granted=True)
    assert grant.method == ConsentMethod.FORM and grant.wording.text.startswith("Analytics")
