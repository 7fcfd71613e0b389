"""The public portfolio (IMG-3): per-image permission in the ledger, publishing only with a
live permission, public images only through short-lived signed links, withdrawal that
unpublishes at once and deletes the copies (every S3 version), and copies that outlive
the originals' deletion (IMG-4) only while the permission lives."""

from __future__ import annotations

import io
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings
from django.core import signing
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from django.template.loader import render_to_string
from django.test import Client, RequestFactory, TestCase
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts import roles
from accounts.models import AuditAction, AuditEvent, User
from consent.models import ConsentEvent, ConsentMethod, ConsentPurpose, ConsentText
from consent.selectors import consent_allows
from dsr.services.retention import retention_run_all
from images.models import Photo, PhotoStatus, PortfolioItem, PortfolioStatus, Result, ResultKind
from images.selectors import portfolio_candidates, portfolio_permissions
from images.services import portfolio as portfolio_services
from images.services.access import signed_payload
from images.services.portfolio import (
    COPY_MAX_SIDE,
    PortfolioRefused,
    copy_name,
    portfolio_copies_make,
    portfolio_permission_withdraw,
    portfolio_publish,
    portfolio_unpublish,
)
from images.services.processing import result_store, storage_write
from orders.models import Order, OrderStatus
from tests.conftest import login_client, s3_bucket
from tests.factories import UserFactory
from tests.images.helpers import media_files, new_draft_order
from tests.photos import CAMERA_MAKE, selfie_jpeg

pytestmark = pytest.mark.django_db

UA = "Mozilla/5.0 (X11; Linux x86_64) PortfolioTest/1.0"


# --- Helpers -----------------------------------------------------------------------------------


def delivered_order(customer: User, *, kinds=(ResultKind.RETOUCHED,)) -> tuple[Order, list[Result]]:
    """A retouching order with one clean original (uploaded through the view, processed by
    the eager worker) and one result per kind, marked delivered."""
    client = login_client(customer)
    order = new_draft_order(client)
    photo_file = SimpleUploadedFile("me.jpg", selfie_jpeg(600), "image/jpeg")
    with TestCase.captureOnCommitCallbacks(execute=True):  # the worker runs after commit
        response = client.post(
            reverse("orders:photos_upload", args=[order.reference]), {"photos": [photo_file]}
        )
    assert response.status_code == 302, response.content[:500]
    photo = Photo.objects.get(order=order)
    assert photo.status == PhotoStatus.READY and photo.file
    now = timezone.now()
    Order.objects.filter(pk=order.pk).update(
        status=OrderStatus.DELIVERED, paid_at=now, delivered_at=now, last_edited_at=now
    )
    order.refresh_from_db()
    # The result as a retoucher might deliver it: big, with camera EXIF and GPS still in it,
    # so the test can see that the portfolio copy is downsized and stripped.
    results = [
        result_store(
            order=order, photo=photo, kind=kind, data=selfie_jpeg(2000), width=1500, height=2000
        )
        for kind in kinds
    ]
    return order, results


def marketing_user() -> User:
    return UserFactory(role=roles.MARKETING)


def grant(client: Client, result: Result, **extra) -> Any:
    purpose = ConsentPurpose.objects.get(key="portfolio")
    data = {"allow": "1", "wording_digest": ConsentText.digest_of(purpose.wording), **extra}
    return client.post(
        reverse("images:portfolio_permission", args=[result.pk]),
        data,
        REMOTE_ADDR="203.0.113.9",
        HTTP_USER_AGENT=UA,
    )


def withdraw(client: Client, target: str, next_url: str = "/consent/mine/") -> Any:
    return client.post(
        reverse("images:portfolio_withdraw"),
        {"target": target, "next": next_url},
        REMOTE_ADDR="203.0.113.10",
    )


def published(customer: User, captured, *, caption: str = "Soft light") -> PortfolioItem:
    """One delivered result with the customer's permission, published, copies made."""
    _, (result,) = delivered_order(customer)
    assert grant(login_client(customer), result).status_code == 302
    with captured(execute=True):
        item = portfolio_publish(result=result, actor=marketing_user(), caption=caption)
    item.refresh_from_db()
    assert item.after and item.before, "the copies were not made"
    return item


def read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def follow_public_image(client: Client, item: PortfolioItem, side: str = "after") -> bytes:
    response = client.get(reverse("images:portfolio_image", args=[item.pk, side]))
    assert response.status_code == 302, response.status_code
    signed = client.get(response["Location"])
    assert signed.status_code == 200
    return b"".join(signed.streaming_content)


# --- The customer's permission -----------------------------------------------------------------


def test_customer_allows_one_image_and_the_ledger_keeps_the_wording_and_ip_IMG_3_CON_3(
    customer,
) -> None:
    """IMG-3, CON-3: the order page shows the exact wording next to each delivered image;
    allowing one records purpose, target, digest of that wording, policy version, method
    and the client's address; the other image stays not allowed."""
    order, (first, second) = delivered_order(
        customer, kinds=(ResultKind.RETOUCHED, ResultKind.AUTOMATED)
    )
    client = login_client(customer)
    page = client.get(reverse("orders:detail", args=[order.reference])).content.decode()
    wording = ConsentPurpose.objects.get(key="portfolio").wording
    assert page.count(wording) == 2  # one form per eligible image, each with the wording
    for result in (first, second):
        assert reverse("images:portfolio_permission", args=[result.pk]) in page

    response = grant(client, first)
    assert response.status_code == 302
    assert response["Location"].endswith(f"/orders/{order.reference}/#portfolio")
    event = ConsentEvent.objects.get(purpose__key="portfolio")
    assert event.user == customer and event.subject == f"u:{customer.pk}"
    assert event.target == f"result:{first.pk}" and event.granted
    assert event.wording.digest == ConsentText.digest_of(wording)
    assert event.wording.text == wording
    assert event.method == ConsentMethod.FORM
    assert event.ip_address == "203.0.113.9" and event.user_agent == UA
    assert consent_allows(purpose="portfolio", user=customer, target=f"result:{first.pk}")
    assert not consent_allows(purpose="portfolio", user=customer, target=f"result:{second.pk}")

    page = client.get(reverse("orders:detail", args=[order.reference])).content.decode()
    assert page.count(wording) == 1  # only the image not yet allowed asks again
    assert "allowed in the portfolio" in page

    # Withdrawing from the order page: one click, recorded the same way.
    response = client.post(
        reverse("images:portfolio_permission", args=[first.pk]),
        {"allow": "0"},
        REMOTE_ADDR="203.0.113.11",
    )
    assert response.status_code == 302
    latest = ConsentEvent.objects.filter(purpose__key="portfolio").first()
    assert latest is not None and not latest.granted and latest.ip_address == "203.0.113.11"
    assert not consent_allows(purpose="portfolio", user=customer, target=f"result:{first.pk}")


def test_changed_wording_is_not_recorded_as_agreed_IMG_3_CON_3(customer) -> None:
    _, (result,) = delivered_order(customer)
    client = login_client(customer)
    response = grant(client, result, wording_digest="0" * 64)
    assert response.status_code == 409
    assert "wording" in response.content.decode()
    missing = client.post(reverse("images:portfolio_permission", args=[result.pk]), {"allow": "1"})
    assert missing.status_code == 409
    assert not ConsentEvent.objects.filter(purpose__key="portfolio").exists()


def test_only_delivered_retouched_or_automated_images_can_be_allowed_IMG_3(customer) -> None:
    order, (passport, preview, retouched) = delivered_order(
        customer,
        kinds=(ResultKind.PASSPORT_DIGITAL, ResultKind.PREVIEW, ResultKind.RETOUCHED),
    )
    client = login_client(customer)
    page = client.get(reverse("orders:detail", args=[order.reference])).content.decode()
    assert reverse("images:portfolio_permission", args=[retouched.pk]) in page
    for result in (passport, preview):
        assert reverse("images:portfolio_permission", args=[result.pk]) not in page
        assert grant(client, result).status_code == 409
    # Not delivered yet: no section, and a forged form is refused.
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.READY_FOR_REVIEW)
    page = client.get(reverse("orders:detail", args=[order.reference])).content.decode()
    assert 'id="portfolio"' not in page
    assert grant(client, retouched).status_code == 409
    assert not ConsentEvent.objects.filter(purpose__key="portfolio").exists()


def test_bad_input_on_the_permission_endpoints_is_a_clear_4xx_IMG_3(customer) -> None:
    _, (result,) = delivered_order(customer)
    client = login_client(customer)
    url = reverse("images:portfolio_permission", args=[result.pk])
    assert client.post(url, {"allow": "maybe"}).status_code == 400
    assert client.get(url).status_code == 405
    assert withdraw(client, "result:abc").status_code == 404
    assert withdraw(client, "").status_code == 404
    assert client.post(reverse("images:portfolio_permission", args=[999_999])).status_code == 404
    assert not ConsentEvent.objects.filter(purpose__key="portfolio").exists()


def test_other_customers_and_guests_get_nothing_IMG_3(
    customer, other_customer, django_capture_on_commit_callbacks
) -> None:
    """IMG-3: another customer gets a 404 on the grant and withdraw endpoints (and
    changes nothing); a guest is sent to log in."""
    item = published(customer, django_capture_on_commit_callbacks)
    result = item.result
    assert result is not None
    other = login_client(other_customer)
    for allow in ("1", "0"):
        response = other.post(
            reverse("images:portfolio_permission", args=[result.pk]), {"allow": allow}
        )
        assert response.status_code == 404
    assert withdraw(other, item.consent_target).status_code == 404
    guest = Client()
    response = guest.post(reverse("images:portfolio_permission", args=[result.pk]), {"allow": "1"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert guest.post(reverse("images:portfolio_withdraw"), {"target": "x"}).status_code == 302
    item.refresh_from_db()
    assert item.status == PortfolioStatus.PUBLISHED
    assert ConsentEvent.objects.filter(purpose__key="portfolio").count() == 1
    assert not ConsentEvent.objects.filter(user=other_customer).exists()


# --- Publishing --------------------------------------------------------------------------------


def test_publish_refused_without_live_permission_and_after_withdrawal_IMG_3(
    customer, django_capture_on_commit_callbacks
) -> None:
    _, (result,) = delivered_order(customer)
    staff = marketing_user()
    with pytest.raises(PortfolioRefused, match="not allowed"):
        portfolio_publish(result=result, actor=staff)
    assert not PortfolioItem.objects.exists()

    assert grant(login_client(customer), result).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        item = portfolio_publish(result=result, actor=staff, caption="  Golden hour  ")
    assert item.status == PortfolioStatus.PUBLISHED and item.caption == "Golden hour"
    assert item.consent_target == f"result:{result.pk}" and item.customer == customer
    audit = AuditEvent.objects.get(action=AuditAction.PORTFOLIO_PUBLISHED)
    assert audit.actor == staff and audit.subject == customer
    assert audit.detail["item"] == item.pk
    with pytest.raises(PortfolioRefused, match="already"):
        portfolio_publish(result=result, actor=staff)

    with django_capture_on_commit_callbacks(execute=True):
        withdraw(login_client(customer), item.consent_target)
    with pytest.raises(PortfolioRefused, match="not allowed"):
        portfolio_publish(result=result, actor=staff)
    assert not PortfolioItem.objects.filter(status=PortfolioStatus.PUBLISHED).exists()


def test_staff_without_the_publish_permission_cannot_publish_IMG_3(
    customer, support, retoucher, privacy_officer
) -> None:
    _, (result,) = delivered_order(customer)
    assert grant(login_client(customer), result).status_code == 302
    for staff in (support, retoucher, privacy_officer):
        with pytest.raises(PortfolioRefused, match="permission to publish"):
            portfolio_publish(result=result, actor=staff)
    # A customer who somehow reached the service is refused too.
    with pytest.raises(PortfolioRefused):
        portfolio_publish(result=result, actor=customer)
    client = login_client(privacy_officer, verified=True)
    assert client.get(reverse("admin:images_portfolioitem_candidates")).status_code == 403
    url = reverse("admin:images_portfolioitem_publish", args=[result.pk])
    assert client.post(url, {"caption": "x"}).status_code == 403
    preview = reverse("admin:images_portfolioitem_preview", args=[result.pk, "after"])
    assert client.get(preview).status_code == 403
    assert not PortfolioItem.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.IMAGE_ACCESSED).exists()


def test_admin_candidates_preview_is_audited_and_publish_makes_clean_copies_IMG_3_IMG_2(
    customer, other_customer, django_capture_on_commit_callbacks
) -> None:
    """IMG-3, IMG-2, IMG-5: candidates are only images with live permission; opening one
    is audited with reason "portfolio"; the copies are downsized, stripped JPEGs under
    random "portfolio/" keys, separate from the customer's files."""
    _, (allowed,) = delivered_order(customer)
    _, (not_allowed,) = delivered_order(other_customer)
    assert grant(login_client(customer), allowed).status_code == 302
    assert list(portfolio_candidates()) == [allowed]
    staff = marketing_user()
    client = login_client(staff, verified=True)

    page = client.get(reverse("admin:images_portfolioitem_candidates"))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="candidate-{allowed.pk}"' in html and f"candidate-{not_allowed.pk}" not in html
    assert customer.email not in html

    preview = client.get(reverse("admin:images_portfolioitem_preview", args=[allowed.pk, "after"]))
    assert preview.status_code == 302
    audit = AuditEvent.objects.get(action=AuditAction.IMAGE_ACCESSED)
    assert audit.actor == staff and audit.subject == customer
    assert (
        audit.detail["reason"] == "portfolio" and audit.detail["target"] == f"result:{allowed.pk}"
    )
    refused = client.get(
        reverse("admin:images_portfolioitem_preview", args=[not_allowed.pk, "after"])
    )
    assert refused.status_code == 404
    assert AuditEvent.objects.filter(action=AuditAction.IMAGE_ACCESSED).count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:images_portfolioitem_publish", args=[allowed.pk]),
            {"caption": "Evening portrait"},
        )
    assert response.status_code == 302
    item = PortfolioItem.objects.get()
    assert item.published_by == staff and item.caption == "Evening portrait"
    for side, field in (("after", item.after), ("before", item.before)):
        name = field.name or ""
        assert name == copy_name(item.pk, side) and name.startswith("portfolio/")
        data = read(name)
        img = Image.open(io.BytesIO(data))
        assert img.format == "JPEG" and max(img.size) <= COPY_MAX_SIDE
        assert not img.getexif() and "icc_profile" not in img.info
        assert CAMERA_MAKE.encode() not in data
    assert Image.open(io.BytesIO(read(item.after.name))).size == (1200, 1600)
    # Publishing an image without permission through the admin: refused with the reason.
    response = client.post(
        reverse("admin:images_portfolioitem_publish", args=[not_allowed.pk]), follow=True
    )
    assert "has not allowed" in response.content.decode()
    assert PortfolioItem.objects.count() == 1


# --- The public page ---------------------------------------------------------------------------


def test_public_page_shows_only_live_items_through_short_lived_signed_links_IMG_3(
    customer, other_customer, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    live = published(customer, django_capture_on_commit_callbacks, caption="Bright and clear")
    gone = published(other_customer, django_capture_on_commit_callbacks, caption="Withdrawn one")
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(login_client(other_customer), gone.consent_target)

    public = Client()
    page = public.get(reverse("images:portfolio"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Bright and clear" in html and "Withdrawn one" not in html
    assert reverse("images:portfolio_image", args=[live.pk, "after"]) in html
    assert reverse("images:portfolio_image", args=[live.pk, "before"]) in html
    for person in (customer, other_customer):
        assert person.email not in html and person.full_name not in html
    # No permanent URL: the page links the checking view, never storage.
    assert str(live.after.name) not in html and "/images/file/" not in html

    response = public.get(reverse("images:portfolio_image", args=[live.pk, "after"]))
    assert response.status_code == 302
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    location = response["Location"]
    token = location.rstrip("/").rsplit("/", 1)[-1]
    assert signed_payload(token)["n"] == live.after.name
    # The link dies after SIGNED_URL_MAX_AGE (at most 5 minutes).
    assert django_settings.SIGNED_URL_MAX_AGE <= 300
    later = time.time() + django_settings.SIGNED_URL_MAX_AGE + 1
    monkeypatch.setattr(signing.time, "time", lambda: later)
    with pytest.raises(Http404):
        signed_payload(token)
    monkeypatch.undo()
    assert Image.open(io.BytesIO(follow_public_image(public, live))).format == "JPEG"

    for side in ("after", "before", "sideways"):
        assert (
            public.get(reverse("images:portfolio_image", args=[gone.pk, side])).status_code == 404
        )
    assert public.get(reverse("images:portfolio_image", args=[999_999, "after"])).status_code == 404


def test_permission_withdrawn_outside_the_service_still_hides_the_image_IMG_3(
    customer, django_capture_on_commit_callbacks
) -> None:
    """The image view asks the ledger at each request, not only the item's status."""
    from consent.services.ledger import consent_record

    item = published(customer, django_capture_on_commit_callbacks)
    consent_record(
        purpose="portfolio",
        target=item.consent_target,
        granted=False,
        method=ConsentMethod.STAFF,
        actor=marketing_user(),
        user=customer,
        note="Letter of 3 March",
    )
    public = Client()
    assert public.get(reverse("images:portfolio_image", args=[item.pk, "after"])).status_code == 404
    assert (
        f"portfolio-item-{item.pk}" not in public.get(reverse("images:portfolio")).content.decode()
    )


# --- Withdrawal --------------------------------------------------------------------------------


def test_withdrawal_unpublishes_at_once_then_deletes_the_copies_local_IMG_3(
    customer, django_capture_on_commit_callbacks
) -> None:
    item = published(customer, django_capture_on_commit_callbacks)
    names = [item.before.name, item.after.name]
    assert all(n in media_files() for n in names)
    client = login_client(customer)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = withdraw(client, item.consent_target, next_url="/consent/mine/")
        # Committed in the same transaction as the ledger event, before any task ran.
        item.refresh_from_db()
        assert item.status == PortfolioStatus.WITHDRAWN and item.withdrawn_at is not None
        public = Client()
        assert (
            public.get(reverse("images:portfolio_image", args=[item.pk, "after"])).status_code
            == 404
        )
        assert (
            f"portfolio-item-{item.pk}"
            not in public.get(reverse("images:portfolio")).content.decode()
        )
    assert response.status_code == 302 and response["Location"] == "/consent/mine/"
    assert callbacks, "the copies' deletion was not queued"
    assert all(n in media_files() for n in names)
    for callback in callbacks:
        callback()
    assert not [f for f in media_files() if f.startswith("portfolio/")]
    item.refresh_from_db()
    assert not item.before and not item.after
    event = ConsentEvent.objects.filter(purpose__key="portfolio").first()
    assert event is not None and not event.granted and event.ip_address == "203.0.113.10"
    audit = AuditEvent.objects.get(action=AuditAction.PORTFOLIO_UNPUBLISHED)
    assert audit.detail["reason"] == "permission withdrawn" and audit.detail["items"] == [item.pk]
    # The customer's own delivered files are untouched: only the portfolio copies went.
    assert Result.objects.filter(pk=item.result.pk).exists()


def test_withdraw_redirects_only_to_a_safe_next_IMG_3(
    customer, django_capture_on_commit_callbacks
) -> None:
    item = published(customer, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = withdraw(login_client(customer), item.consent_target, "https://evil.example/")
    assert response.status_code == 302 and response["Location"] == reverse("orders:list")


def test_withdrawal_on_versioned_s3_deletes_every_version_IMG_3(
    customer, settings, django_capture_on_commit_callbacks
) -> None:
    s3, bucket = s3_bucket(settings, versioned=True)
    item = published(customer, django_capture_on_commit_callbacks)
    # A retried copy task writes the same key again: two versions of the "after" copy.
    storage_write(item.after.name, read(item.after.name))
    reply = s3.list_object_versions(Bucket=bucket, Prefix="portfolio/")
    assert len(reply.get("Versions", [])) == 3

    # S3 links are presigned for at most 5 minutes, never public.
    response = Client().get(reverse("images:portfolio_image", args=[item.pk, "after"]))
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert int(query["X-Amz-Expires"][0]) <= 300 and "X-Amz-Signature" in query

    with django_capture_on_commit_callbacks(execute=True):
        withdraw(login_client(customer), item.consent_target)
    reply = s3.list_object_versions(Bucket=bucket, Prefix="portfolio/")
    assert reply.get("Versions", []) == [] and reply.get("DeleteMarkers", []) == []
    # The customer's originals and results are still there (IMG-4 decides about those).
    assert s3.list_object_versions(Bucket=bucket, Prefix="o/").get("Versions")


def test_copy_finished_after_a_withdrawal_leaves_nothing_behind_IMG_3(
    customer, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    """The race: the customer withdraws while a worker is making the copies."""
    _, (result,) = delivered_order(customer)
    client = login_client(customer)
    assert grant(client, result).status_code == 302
    with django_capture_on_commit_callbacks(execute=False):
        item = portfolio_publish(result=result, actor=marketing_user())
    real_make = portfolio_services._make_copy
    calls: list[str] = []

    def make_then_withdrawn(source: str, target: str) -> str:
        name = real_make(source, target)
        if not calls:
            portfolio_permission_withdraw(
                user=customer, target=item.consent_target, meta=portfolio_services.RequestMeta()
            )
        calls.append(name)
        return name

    monkeypatch.setattr(portfolio_services, "_make_copy", make_then_withdrawn)
    with django_capture_on_commit_callbacks(execute=True):
        assert portfolio_copies_make(item_id=item.pk) == "withdrawn"
    assert not [f for f in media_files() if f.startswith("portfolio/")]
    item.refresh_from_db()
    assert item.status == PortfolioStatus.WITHDRAWN and not item.after
    # And a copy task arriving after the withdrawal does nothing.
    assert portfolio_copies_make(item_id=item.pk) == "skipped"


def test_staff_unpublish_deletes_the_copies_IMG_3(
    customer, django_capture_on_commit_callbacks
) -> None:
    item = published(customer, django_capture_on_commit_callbacks)
    staff = marketing_user()
    with pytest.raises(PortfolioRefused):
        portfolio_unpublish(item=item, actor=customer)
    client = login_client(staff, verified=True)
    listing = client.get(reverse("admin:images_portfolioitem_changelist"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert reverse("admin:images_portfolioitem_candidates") in html
    assert reverse("images:portfolio_image", args=[item.pk, "after"]) in html
    assert customer.email not in html
    change = client.get(reverse("admin:images_portfolioitem_change", args=[item.pk]))
    assert change.status_code == 200 and 'name="caption"' in change.content.decode()
    assert "delete_selected" not in html
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:images_portfolioitem_changelist"),
            {"action": "unpublish", "_selected_action": [item.pk]},
        )
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.status == PortfolioStatus.UNPUBLISHED and item.withdrawn_at is not None
    assert not [f for f in media_files() if f.startswith("portfolio/")]
    audit = AuditEvent.objects.get(action=AuditAction.PORTFOLIO_UNPUBLISHED)
    assert audit.actor == staff and audit.detail["reason"] == "staff"
    # The permission itself still stands: staff may publish it again.
    assert consent_allows(purpose="portfolio", user=customer, target=item.consent_target)


# --- Retention ---------------------------------------------------------------------------------


def test_copies_outlive_the_originals_deletion_only_while_permission_lives_IMG_3_IMG_4(
    customer, django_capture_on_commit_callbacks
) -> None:
    item = published(customer, django_capture_on_commit_callbacks)
    copies = {item.before.name, item.after.name}
    order_files = [f for f in media_files() if f.startswith("o/")]
    assert order_files
    later = timezone.now() + timedelta(days=django_settings.RESULTS_RETENTION_DAYS, hours=1)
    retention_run_all(now=later, force=True)
    assert not Result.objects.exists() and not Photo.objects.exists()
    assert not [f for f in media_files() if f.startswith("o/")]
    item.refresh_from_db()
    assert item.status == PortfolioStatus.PUBLISHED and item.result is None
    assert copies <= set(media_files())
    public = Client()
    assert f"portfolio-item-{item.pk}" in public.get(reverse("images:portfolio")).content.decode()
    follow_public_image(public, item)
    # The privacy page still lists the permission, without the (deleted) photo.
    (permission,) = portfolio_permissions(user=customer)
    assert permission.result is None and permission.published and "deleted" in permission.label

    with django_capture_on_commit_callbacks(execute=True):
        withdraw(login_client(customer), item.consent_target)
    assert not copies & set(media_files())
    retention_run_all(now=timezone.now() + timedelta(minutes=1), force=True)
    assert not PortfolioItem.objects.exists()


def test_retention_is_the_safety_net_for_copies_a_failed_task_left_IMG_3(
    customer, django_capture_on_commit_callbacks
) -> None:
    item = published(customer, django_capture_on_commit_callbacks)
    copies = {item.before.name, item.after.name}
    # The deletion task never runs (worker lost, retries exhausted).
    with django_capture_on_commit_callbacks(execute=False):
        withdraw(login_client(customer), item.consent_target)
    assert copies <= set(media_files())
    retention_run_all(now=timezone.now() + timedelta(seconds=1), force=True)
    assert not PortfolioItem.objects.filter(pk=item.pk).exists()
    assert not [f for f in media_files() if f.startswith("portfolio/")]
    # Published items are never touched by that rule.
    other = published(customer, django_capture_on_commit_callbacks, caption="Still live")
    retention_run_all(now=timezone.now() + timedelta(days=400), force=True)
    other.refresh_from_db()
    assert other.status == PortfolioStatus.PUBLISHED
    assert {other.before.name, other.after.name} <= set(media_files())


# --- The privacy page partial ------------------------------------------------------------------


def test_permissions_partial_lists_live_permissions_with_one_click_withdraw_IMG_3(
    customer, other_customer, django_capture_on_commit_callbacks, django_assert_num_queries
) -> None:
    item = published(customer, django_capture_on_commit_callbacks)
    order2, (unpublished_result,) = delivered_order(customer)
    assert grant(login_client(customer), unpublished_result).status_code == 302
    _, (foreign,) = delivered_order(other_customer)
    assert grant(login_client(other_customer), foreign).status_code == 302

    with django_assert_num_queries(3):
        permissions = portfolio_permissions(user=customer)
    assert [p.target for p in permissions] == [
        f"result:{unpublished_result.pk}",
        item.consent_target,
    ]
    assert [p.published for p in permissions] == [False, True]
    assert permissions[0].order_reference == order2.reference

    request = RequestFactory().get("/consent/mine/")
    request.user = customer
    html = render_to_string(
        "consent/_portfolio_permissions.html",
        {"portfolio_permissions": permissions},
        request=request,
    )
    assert html.count('name="target"') == 2
    assert f'value="{item.consent_target}"' in html and f"result:{foreign.pk}" not in html
    assert reverse("images:portfolio_withdraw") in html
    assert 'name="next" value="/consent/mine/"' in html
    assert f"Order {order2.reference}" in html

    with django_capture_on_commit_callbacks(execute=True):
        withdraw(login_client(customer), item.consent_target)
    assert [p.target for p in portfolio_permissions(user=customer)] == [
        f"result:{unpublished_result.pk}"
    ]
    empty = render_to_string(
        "consent/_portfolio_permissions.html", {"portfolio_permissions": []}, request=request
    )
    assert 'id="portfolio-permissions-empty"' in empty
