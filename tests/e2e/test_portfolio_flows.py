"""The public portfolio end to end in Chromium, with a real Celery worker (IMG-3).

A customer allows one delivered photo on the order page, staff publish it (the service,
checking the live permission), the worker makes the copies and the public portfolio shows
the image; the customer withdraws in the browser and the portfolio page and the image
URL stop showing it at once; the worker then deletes the copies.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from accounts import roles
from accounts.models import User
from consent.models import ConsentEvent, ConsentPurpose, ConsentText
from images.models import Photo, PhotoStatus, PortfolioItem, PortfolioStatus, Result, ResultKind
from images.services.portfolio import portfolio_publish
from images.services.processing import result_store, storage_write
from orders.models import Order, OrderKind, OrderStatus
from tests.e2e.test_orders_flows import log_in, new_page, stored_names
from tests.factories import UserFactory
from tests.photos import selfie_jpeg

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

Screenshot = Callable[..., Path]
WAIT = 30.0  # seconds: the worker's copy and deletion fit in this


def delivered_order(customer: User) -> tuple[Order, Result]:
    """A delivered retouching order with a clean original and one retouched result."""
    now = timezone.now()
    order = Order.objects.create(
        kind=OrderKind.RETOUCH,
        customer=customer,
        status=OrderStatus.DELIVERED,
        amount_minor=900,
        paid_at=now,
        delivered_at=now,
    )
    original = storage_write(f"o/{order.storage_token}/p/1.jpg", selfie_jpeg(700, gps=False))
    photo = Photo.objects.create(
        order=order,
        file=original,
        status=PhotoStatus.READY,
        scan="clean",
        width=525,
        height=700,
    )
    result = result_store(
        order=order,
        photo=photo,
        kind=ResultKind.RETOUCHED,
        data=selfie_jpeg(1800, gps=False),
        width=1350,
        height=1800,
    )
    return order, result


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT}s waiting for {what}")
        time.sleep(0.2)


def decline_cookies(page: Page) -> None:
    banner = page.locator("#cookie-banner")
    if banner.count():
        banner.get_by_role("button", name="Reject all").click()
        expect(page.locator("#cookie-banner")).to_have_count(0)


def test_portfolio_permission_publish_show_and_withdraw_in_the_browser_IMG_3(
    settings: Any,
    page: Page,
    browser: Browser,
    staff_roles: None,
    screenshot: Screenshot,
) -> None:
    """IMG-3: per-image permission in the browser (the exact wording recorded in the
    ledger), publishing only with it, a public page showing the image through a signed
    link, and a withdrawal that makes the image disappear the moment it is made."""
    customer = cast(User, UserFactory(email=f"pia-{uuid.uuid4().hex[:8]}@example.com"))
    staff = cast(
        User, UserFactory(email=f"mkt-{uuid.uuid4().hex[:8]}@example.com", role=roles.MARKETING)
    )
    order, result = delivered_order(customer)
    wording = ConsentPurpose.objects.get(key="portfolio").wording

    # The customer allows this one photo on the order page.
    log_in(page, customer.email)
    page.goto(f"/orders/{order.reference}/")
    decline_cookies(page)
    choice = page.locator(f"#portfolio-result-{result.pk}")
    expect(choice.locator(".portfolio-state")).to_have_text("not allowed")
    expect(choice.locator(".wording")).to_have_text(wording)
    screenshot(page, "portfolio-1-order-page")
    choice.get_by_role("button", name="Allow this photo in the portfolio").click()
    expect(page.locator(".messages")).to_contain_text("may now be shown in our portfolio")
    expect(choice.locator(".portfolio-state")).to_have_text("allowed in the portfolio")
    event = ConsentEvent.objects.get(purpose__key="portfolio", user=customer)
    assert event.granted and event.target == f"result:{result.pk}"
    assert event.wording.digest == ConsentText.digest_of(wording)
    assert event.ip_address and "Chrome" in event.user_agent

    # Staff publish it; the worker makes the copies.
    item = portfolio_publish(result=result, actor=staff, caption="Warm evening light")
    wait_for(lambda: bool(PortfolioItem.objects.get(pk=item.pk).after), "the portfolio copies")
    item.refresh_from_db()
    copies = {item.before.name, item.after.name}
    assert all(name.startswith("portfolio/") for name in copies)
    assert stored_names("local", settings, None, ["portfolio/"]) == copies

    # Anyone sees it on the public portfolio, loaded through the checking view.
    visitor = new_page(browser, settings.SITE_URL)
    visitor.goto("/")
    decline_cookies(visitor)
    visitor.get_by_role("link", name="Portfolio", exact=True).click()
    expect(visitor.locator("h1")).to_have_text("Portfolio")
    figure = visitor.locator(f"#portfolio-item-{item.pk}")
    expect(figure).to_contain_text("Warm evening light")
    after = figure.locator("img.after")
    expect(after).to_be_visible()
    visitor.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=after.element_handle()
    )
    assert after.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [1200, 1600]
    assert figure.locator("img.before").evaluate("img => img.naturalWidth") == 525
    assert customer.full_name not in visitor.content() and customer.email not in visitor.content()
    image_url = after.get_attribute("src")
    assert image_url == f"/images/portfolio/{item.pk}/after/"
    direct = visitor.request.get(image_url, max_redirects=0)
    assert direct.status == 302 and "/images/file/" in direct.headers["location"]
    screenshot(visitor, "portfolio-2-public")

    # The customer withdraws in the browser: gone from the page and the URL at once.
    page.reload()
    choice.get_by_role("button", name="Withdraw permission").click()
    expect(page.locator(".messages")).to_contain_text("Permission withdrawn")
    expect(choice.locator(".portfolio-state")).to_have_text("not allowed")
    visitor.reload()
    expect(visitor.locator(f"#portfolio-item-{item.pk}")).to_have_count(0)
    expect(visitor.locator("#portfolio-empty")).to_be_visible()
    assert visitor.request.get(image_url, max_redirects=0).status == 404
    screenshot(visitor, "portfolio-3-withdrawn")
    item.refresh_from_db()
    assert item.status == PortfolioStatus.WITHDRAWN and item.withdrawn_at is not None

    # The worker deletes the copies; the customer's own delivered files stay (IMG-4 rules).
    wait_for(
        lambda: stored_names("local", settings, None, ["portfolio/"]) == set(),
        "the portfolio copies to be deleted",
    )
    assert Result.objects.filter(pk=result.pk).exists()
    visitor.context.close()
