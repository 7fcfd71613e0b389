"""Order flows through a real browser, live server, Celery worker and SMTP sink.

Each flow runs on the local storage default and on a versioned S3 bucket (moto):
retouching with support, retoucher, revision and download (ORD-1, ORD-2, ORD-3, IMG-2),
a guest's passport photo (ACC-4, IMG-6), and then, with the clock moved past the
retention limits, every stored file of the orders is gone (IMG-4).
"""

from __future__ import annotations

import base64
import io
import re
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, expect
from playwright.sync_api import Error as PlaywrightError

from accounts import roles
from accounts.models import User
from dsr.services.retention import retention_run_all
from images.models import Photo, Result, ResultKind
from orders.models import Order, OrderStatus
from tests.conftest import s3_bucket
from tests.e2e.conftest import Mailbox, fresh_totp, link_in
from tests.factories import PASSWORD, UserFactory
from tests.photos import CAMERA_MAKE, selfie_jpeg

pytestmark = pytest.mark.e2e

Screenshot = Callable[..., Path]
WAIT = 30_000  # ms: workers, meta refreshes and S3 round trips all fit in this
STORAGES = ["local", "s3"]
INSTRUCTIONS = "Soften the shadows under the eyes and warm up the colours."
NOTE = "Please keep the freckles."
REVISION = "A little less warmth, please."


# --- Helpers -----------------------------------------------------------------------------------


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def use_storage(storage: str, settings: Any) -> Any:
    """S3: a fresh versioned bucket as the default storage (before any request); (client, name)."""
    if storage == "s3":
        return s3_bucket(settings, versioned=True)
    assert "S3Storage" not in settings.STORAGES["default"]["BACKEND"]
    return None


def write_photo(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def totp_secret(user: User) -> str:
    """A confirmed TOTP device for *user*; its secret in base32, as an authenticator shows it."""
    device = TOTPDevice.objects.create(user=user, name="e2e phone", confirmed=True)
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def log_in(page: Page, email: str, *, totp: str | None = None) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    if totp is not None:
        expect(page).to_have_url(re.compile(r"/accounts/login/2fa/"))
        code, _ = fresh_totp(totp)
        page.fill("#id_code", code)
        page.get_by_role("button", name="Verify").click()
    expect(page.locator("h1")).to_have_text("My profile")


def new_page(browser: Browser, base_url: str) -> Page:
    """Another person's browser: a context with its own cookies."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    return context.new_page()


def wait_until(page: Page, predicate_js: str, what: str, timeout: float = WAIT / 1000) -> None:
    """Poll a JS predicate across meta refreshes (a navigation may destroy the context)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if page.evaluate(predicate_js):
                return
        except PlaywrightError:
            pass  # the page is navigating: ask the next document
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} on {page.url}")
        page.wait_for_timeout(300)


def reload_until(page: Page, locator: Locator, what: str, timeout: float = WAIT / 1000) -> None:
    """Pages without an auto-refresh (the admin): reload until *locator* matches something."""
    deadline = time.monotonic() + timeout
    while locator.count() == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} on {page.url}")
        page.wait_for_timeout(500)
        page.reload()


def order_status(page: Page) -> Locator:
    return page.locator("#order-status")


def download(page: Page, link: Locator) -> tuple[str, bytes]:
    """Click a download link (permission check, then the signed link); (filename, bytes)."""
    with page.expect_download(timeout=WAIT) as info:
        link.click()
    dl = info.value
    assert dl.failure() is None, dl.failure()
    return dl.suggested_filename, Path(dl.path()).read_bytes()


def assert_clean_jpeg(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    assert not img.getexif(), dict(img.getexif())
    assert "exif" not in img.info and "icc_profile" not in img.info
    assert CAMERA_MAKE.encode() not in data
    return img


def stored_names(storage: str, settings: Any, s3: Any, tokens: list[str]) -> set[str]:
    """Every file (S3: every version and delete marker) under the orders' storage tokens."""
    if storage == "s3":
        client, bucket = s3
        names = set()
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                names.add(entry["Key"])
        return {n for n in names if any(t in n for t in tokens)}
    root = Path(settings.STORAGES["default"]["OPTIONS"]["location"])
    if not root.exists():
        return set()
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    return {n for n in files if any(t in n for t in tokens)}


def order_file_names(orders: list[Order]) -> set[str]:
    """What the rows point at: the clean originals, results, and any raw upload still kept."""
    names = set()
    for photo in Photo.objects.filter(order__in=orders):
        names |= {n for n in (photo.file.name, photo.upload.name) if n}
    names |= {r.file.name for r in Result.objects.filter(order__in=orders) if r.file.name}
    return names


def run_retention_after_results_limit() -> None:
    later = timezone.now() + timedelta(days=django_settings.RESULTS_RETENTION_DAYS, hours=1)
    retention_run_all(now=later, force=True)


# --- Retouching --------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", STORAGES)
def test_retouching_order_support_retoucher_revision_download_and_deletion(
    storage: str,
    settings: Any,
    page: Page,
    browser: Browser,
    staff_roles: None,
    maildir: Mailbox,
    screenshot: Screenshot,
    tmp_path: Path,
) -> None:
    """ORD-1, ORD-2, ORD-3, IMG-2, IMG-4: a customer orders retouching of two photos, pays
    with the test gateway; support assigns a retoucher (seeing no image or instructions);
    the retoucher delivers, the customer asks one revision, accepts and downloads a clean
    JPEG. With the clock past the limits, every stored file (every version) is gone."""
    s3 = use_storage(storage, settings)
    shot = f"ord-{storage}-retouch"
    customer = UserFactory(email=unique_email("customer"), full_name="Rita Retouch")
    support = UserFactory(email=unique_email("support"), role=roles.SUPPORT)
    retoucher = UserFactory(email=unique_email("retoucher"), role=roles.RETOUCHER)
    support_secret, retoucher_secret = totp_secret(support), totp_secret(retoucher)

    # The customer starts an order with instructions and uploads two photos at once.
    log_in(page, customer.email)
    page.goto("/orders/")
    page.get_by_role("link", name="New retouching order").click()
    page.fill("#id_instructions", INSTRUCTIONS)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".messages")).to_contain_text("Now add your photos")
    expect(order_status(page)).to_have_text("Draft")
    order = Order.objects.get(customer_id=customer.pk)
    photos = [
        write_photo(tmp_path, "holiday-1.jpg", selfie_jpeg(800)),
        write_photo(tmp_path, "holiday-2.jpg", selfie_jpeg(900)),
    ]
    page.set_input_files("input[name=photos]", photos)
    page.fill("#id_note", NOTE)
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".messages")).to_contain_text("2 photo(s) received")
    # The worker cleans them; the page refreshes itself until both are ready.
    expect(page.locator("ul.photos .photo-status")).to_have_text(["Ready", "Ready"], timeout=WAIT)
    expect(page.locator("#processing")).to_have_count(0)
    screenshot(page, f"{shot}-1-photos-ready")

    # Submit, pay on the test gateway's page, back to the order: paid.
    page.get_by_role("button", name="Submit order").click()
    expect(order_status(page)).to_have_text("Submitted")
    expect(page.locator("p.status")).to_contain_text("18.00 EUR")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    expect(page.locator("h1")).to_have_text("Test payment (no real money)")
    page.get_by_role("button", name=re.compile(r"^Pay .* \(test\)$")).click()
    expect(page).to_have_url(re.compile(rf"/orders/{order.reference}/$"))
    expect(order_status(page)).to_have_text("Paid")
    expect(page.get_by_role("link", name=re.compile(r"^Invoice "))).to_have_count(1)
    screenshot(page, f"{shot}-2-paid")
    maildir.wait_for(
        customer.email, subject_contains=f"Payment received for order {order.reference}"
    )

    # Support (password + TOTP) assigns the retoucher; support sees no image, no instructions.
    support_page = new_page(browser, settings.SITE_URL)
    log_in(support_page, support.email, totp=support_secret)
    support_page.goto("/admin/orders/order/")
    support_page.get_by_role("link", name=order.reference, exact=True).click()
    support_page.get_by_role("link", name="Assign retoucher").click()
    support_page.select_option("#id_retoucher", str(retoucher.pk))
    support_page.locator("input[type=submit][value=Assign]").click()
    expect(support_page.locator(".messagelist")).to_contain_text("Retoucher assigned.")
    expect(support_page).to_have_url(re.compile(rf"/admin/orders/order/{order.pk}/change/$"))
    content = support_page.content()
    assert INSTRUCTIONS not in content and NOTE not in content
    expect(support_page.locator("#work-panel")).to_have_count(0)
    expect(support_page.locator("a[href*='/images/']")).to_have_count(0)
    screenshot(support_page, f"{shot}-3-support-assigned", full_page=False)
    support_page.context.close()

    # The retoucher (password + TOTP) works on it: start, upload a result, mark ready.
    work = new_page(browser, settings.SITE_URL)
    log_in(work, retoucher.email, totp=retoucher_secret)
    work.goto("/admin/orders/order/")
    work.get_by_role("link", name=order.reference, exact=True).click()
    panel = work.locator("#work-panel")
    expect(panel.locator(".order-instructions")).to_contain_text(INSTRUCTIONS)
    expect(panel).to_contain_text(NOTE)

    def deliver_round(result_file: str, n: int) -> None:
        work.get_by_role("button", name="Start work").click()
        expect(work.locator(".messagelist")).to_contain_text("In progress")
        work.set_input_files("#results-upload input[name=results]", result_file)
        work.get_by_role("button", name="Upload results").click()
        expect(work.locator(".messagelist")).to_contain_text("1 result file(s) uploaded.")
        # The worker re-encodes it; the admin page has no auto-refresh.
        ready = panel.locator("li", has_text=f"round {n}").get_by_role("link", name="open")
        reload_until(work, ready, f"the round {n} result to be ready")
        work.get_by_role("button", name="Mark ready for review").click()
        expect(work.locator(".messagelist")).to_contain_text("Ready for review")

    deliver_round(write_photo(tmp_path, "retouched-1.jpg", selfie_jpeg(1000)), 0)
    screenshot(work, f"{shot}-4-retoucher-ready", full_page=False)

    # The customer reviews, asks a revision with a comment.
    page.reload()
    expect(order_status(page)).to_have_text("Ready for review")
    expect(page.locator("ul.results li")).to_have_count(1)
    page.fill("#id_comment", REVISION)
    page.get_by_role("button", name="Ask for a revision").click()
    expect(order_status(page)).to_have_text("Revision requested")
    expect(page.locator("ol.timeline")).to_contain_text(REVISION)

    # Second round; the customer accepts and downloads the revised result.
    work.reload()
    deliver_round(write_photo(tmp_path, "retouched-2.jpg", selfie_jpeg(1100)), 1)
    work.context.close()
    page.reload()
    expect(order_status(page)).to_have_text("Ready for review")
    page.get_by_role("button", name="Accept the results").click()
    expect(order_status(page)).to_have_text("Delivered")
    revised = page.locator("ul.results li", has_text="(revision 1)")
    filename, data = download(page, revised.locator("a.download"))
    assert filename.startswith(order.reference) and filename.endswith(".jpg"), filename
    img = assert_clean_jpeg(data)
    assert img.size == (825, 1100)
    screenshot(page, f"{shot}-5-delivered")
    for subject in (
        f"Order {order.reference} is ready for your review",
        f"Order {order.reference} is delivered",
    ):
        maildir.wait_for(customer.email, subject_contains=subject)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED and order.revision_round == 1

    # IMG-4: past the results' limit, nothing of the order is left in storage.
    names = order_file_names([order])
    assert len(names) == 4, names  # 2 clean originals + 2 results; raw uploads already gone
    assert stored_names(storage, settings, s3, [order.storage_token]) == names
    result_ids = list(Result.objects.filter(order=order).values_list("pk", flat=True))
    run_retention_after_results_limit()
    assert stored_names(storage, settings, s3, [order.storage_token]) == set()
    assert not Photo.objects.filter(order=order).exists()
    assert not Result.objects.filter(order=order).exists()
    page.reload()
    expect(page.locator("ul.photos")).to_contain_text("The photos have been deleted on schedule.")
    expect(page.locator("ul.results")).to_have_count(0)
    expect(order_status(page)).to_have_text("Delivered")
    gone = page.request.get(f"/images/result/{result_ids[-1]}/?download=1", max_redirects=0)
    assert gone.status == 404
    screenshot(page, f"{shot}-6-deleted")


# --- Guest passport photo ----------------------------------------------------------------------


@pytest.mark.parametrize("storage", STORAGES)
def test_guest_passport_photo_preview_pay_download_and_deletion(
    storage: str,
    settings: Any,
    page: Page,
    browser: Browser,
    maildir: Mailbox,
    screenshot: Screenshot,
    tmp_path: Path,
) -> None:
    """ACC-4, IMG-6, IMG-4: an anonymous visitor makes a US passport photo from a selfie,
    sees the preview, gives only an email, pays and downloads the 600x600 digital file
    and the print sheet; past the limits, every stored file is gone."""
    s3 = use_storage(storage, settings)
    shot = f"ord-{storage}-passport"
    email = unique_email("guest")

    page.goto("/orders/passport/")
    expect(page.locator("h1")).to_have_text("Passport and ID photos")
    page.select_option("#id_document", "us_passport")
    page.set_input_files("#id_selfie", write_photo(tmp_path, "selfie.jpg", selfie_jpeg(1200)))
    page.get_by_role("button", name="Make my photo").click()
    expect(page).to_have_url(re.compile(r"/orders/[^/]+/$"))
    order = Order.objects.get(reference=page.url.rstrip("/").rsplit("/", 1)[-1])
    assert order.customer is None and order.guest_email == ""

    # The worker makes the preview; the page refreshes itself until it is there.
    wait_until(
        page,
        "() => !document.querySelector('meta[http-equiv=refresh]')"
        " && document.readyState === 'complete'"
        " && !!document.querySelector('ul.results')",
        "the watermarked preview",
    )
    expect(page.locator("#order-failure")).to_have_count(0)
    results = page.locator("ul.results li")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Watermarked preview")
    expect(page.locator("a.download")).to_have_count(0)  # nothing to take before paying
    screenshot(page, f"{shot}-1-preview")

    # Only an email address to buy; then the test gateway.
    page.fill("#id_email", email)
    page.get_by_role("button", name="Buy this photo").click()
    expect(order_status(page)).to_have_text("Submitted")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    expect(page.locator("h1")).to_have_text("Test payment (no real money)")
    page.get_by_role("button", name=re.compile(r"^Pay .* \(test\)$")).click()
    expect(page).to_have_url(re.compile(rf"/orders/{order.reference}/$"))
    expect(order_status(page)).to_have_text("Delivered", timeout=WAIT)
    screenshot(page, f"{shot}-2-delivered")
    order.refresh_from_db()
    assert order.customer is None and order.guest_email == email

    # The digital file for online applications and the print sheet.
    digital_link = page.locator("ul.results li", has_text="digital file").locator("a.download")
    _name, digital = download(page, digital_link)
    img = assert_clean_jpeg(digital)
    assert img.size == (600, 600) and len(digital) <= 240 * 1024, (img.size, len(digital))
    assert tuple(round(d) for d in img.info["dpi"]) == (300, 300)
    sheet_link = page.locator("ul.results li", has_text="print sheet").locator("a.download")
    _name, sheet_data = download(page, sheet_link)
    sheet = assert_clean_jpeg(sheet_data)
    assert sorted(sheet.size) == [1200, 1800], sheet.size
    assert tuple(round(d) for d in sheet.info["dpi"]) == (300, 300)

    # The delivery email's link opens the order in another browser, without an account.
    _subject, body = maildir.wait_for(email, subject_contains="is delivered")
    other = new_page(browser, settings.SITE_URL)
    other.goto(link_in(body, "/orders/guest/"))
    expect(other).to_have_url(re.compile(rf"/orders/{order.reference}/$"))
    expect(order_status(other)).to_have_text("Delivered")
    other.context.close()

    # IMG-4: past the results' limit, nothing of the order is left in storage.
    names = order_file_names([order])
    kinds = set(Result.objects.filter(order=order).values_list("kind", flat=True))
    assert kinds == {ResultKind.PREVIEW, ResultKind.PASSPORT_DIGITAL, ResultKind.PASSPORT_SHEET}
    assert len(names) == 3, names  # the selfie itself is never kept
    assert stored_names(storage, settings, s3, [order.storage_token]) == names
    run_retention_after_results_limit()
    assert stored_names(storage, settings, s3, [order.storage_token]) == set()
    assert not Result.objects.filter(order=order).exists()
    page.reload()
    expect(order_status(page)).to_have_text("Delivered")
    expect(page.locator("ul.results")).to_have_count(0)
    # Not "being prepared" any more: the files were deleted on schedule, and it says so.
    expect(page.locator("#processing")).to_have_count(0)
    expect(page.locator("body")).to_contain_text("deleted on schedule")
    screenshot(page, f"{shot}-3-deleted")
