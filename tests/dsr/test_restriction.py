"""Restriction of processing (GDPR Art. 18) is checked by every processing path: each one
refuses while the flag is on and works again once it is lifted (DSR-1).

Paths: the editing tasks (photo processing, automated edits), the retoucher starting
work, passport delivery after payment, marketing sends, portfolio publication, audience
building (profiling).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from accounts.models import User
from consent.models import Audience, AudienceMember, AudienceRule, CampaignSend
from consent.services.audiences import audience_build
from consent.services.campaigns import campaign_recipients, campaign_start
from dsr.models import Channel, IdentityCheck, ProcessingRestriction, RequestType, Ticket
from dsr.selectors import processing_restricted
from dsr.services.rights import restriction_lift
from dsr.services.tickets import ticket_create, ticket_verify
from images import tasks
from images.models import Photo, PhotoStatus, PortfolioItem, PortfolioStatus, Result, ResultKind
from images.services import processing
from images.services.portfolio import PortfolioRefused, portfolio_publish
from images.services.restriction import HOLD_MESSAGE
from images.services.results import result_automate
from orders.gateways.base import GatewayEvent, GatewayOutcome
from orders.models import Order, OrderKind, OrderStatus, Payment
from orders.services import TransitionRefused, order_start_work, order_transition
from orders.services.payments import payment_event_apply
from tests.conftest import login_client
from tests.consent.marketing_helpers import SELLER_ADDRESS, campaign_make, subscriber_make
from tests.factories import UserFactory
from tests.images.helpers import new_draft_order
from tests.images.test_portfolio import delivered_order, grant, marketing_user
from tests.photos import selfie_jpeg

pytestmark = pytest.mark.django_db

LIFT_REASON = "The accuracy of the data is confirmed."


def restrict(committed: Any, *, user: User | None = None, email: str = "") -> Ticket:
    """A verified restriction request of the account (or the address): applied at once."""
    with committed():
        if user is not None:
            intake = ticket_create(
                type=RequestType.RESTRICTION,
                channel=Channel.ACCOUNT,
                actor=user,
                user=user,
                identity_check=IdentityCheck.LOGIN,
            )
        else:
            intake = ticket_create(
                type=RequestType.RESTRICTION, channel=Channel.PUBLIC_FORM, actor=None, email=email
            )
            ticket_verify(ticket=intake.ticket, actor=None, method=IdentityCheck.EMAIL_CODE)
    return intake.ticket


def lift(committed: Any, ticket: Ticket, officer: User) -> None:
    with committed():
        restriction_lift(
            restriction=ProcessingRestriction.objects.get(ticket=ticket),
            actor=officer,
            reason=LIFT_REASON,
        )


# --- Editing tasks --------------------------------------------------------------------------------


def test_photo_processing_waits_untouched_and_resumes_after_the_lift_DSR_1(
    committed, customer, privacy_officer
) -> None:
    client = login_client(customer)
    order = new_draft_order(client)
    upload = SimpleUploadedFile("me.jpg", selfie_jpeg(500), "image/jpeg")
    # The upload's task is queued on commit, which this test's transaction never reaches.
    response = client.post(
        reverse("orders:photos_upload", args=[order.reference]), {"photos": [upload]}
    )
    assert response.status_code == 302
    photo = Photo.objects.get(order=order)
    assert photo.status == PhotoStatus.PROCESSING and photo.upload
    ticket = restrict(committed, user=customer)

    assert tasks.photo_process.delay(photo.pk).get() == "restricted"
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.PROCESSING and photo.claimed_at is None
    assert photo.upload and not photo.file and default_storage.exists(photo.upload.name)
    order.refresh_from_db()
    assert order.failure_message == HOLD_MESSAGE
    assert processing.photos_requeue_stale() == 0  # the sweep does not spin on it

    lift(committed, ticket, privacy_officer)  # queues the held photo; the worker runs it
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.READY and photo.file and not photo.upload
    order.refresh_from_db()
    assert order.failure_message == ""


def test_automated_edit_queued_before_the_restriction_does_nothing_DSR_1(
    committed, customer, privacy_officer
) -> None:
    order, _ = delivered_order(customer)
    photo = Photo.objects.get(order=order)
    steps: list[list[Any]] = [["auto_contrast", {"clip": 0.5}]]
    ticket = restrict(committed, user=customer)
    before = Result.objects.filter(order=order).count()
    assert processing.photo_automate(photo_id=photo.pk, steps=steps) == "restricted"
    assert Result.objects.filter(order=order).count() == before
    lift(committed, ticket, privacy_officer)
    assert processing.photo_automate(photo_id=photo.pk, steps=steps) == "ready"
    assert Result.objects.filter(order=order, kind=ResultKind.AUTOMATED).exists()


def test_retoucher_cannot_start_or_edit_while_restricted_DSR_1(
    committed, customer, retoucher, privacy_officer
) -> None:
    paid = Order.objects.create(
        customer=customer,
        kind=OrderKind.RETOUCH,
        status=OrderStatus.PAID,
        paid_at=timezone.now(),
        retoucher=retoucher,
        amount_minor=1500,
    )
    working = Order.objects.create(
        customer=customer,
        kind=OrderKind.RETOUCH,
        status=OrderStatus.IN_PROGRESS,
        retoucher=retoucher,
        amount_minor=1500,
    )
    ticket = restrict(committed, user=customer)
    with pytest.raises(TransitionRefused, match="restricted"):
        order_start_work(actor=retoucher, order=paid)
    paid.refresh_from_db()
    assert paid.status == OrderStatus.PAID
    with pytest.raises(TransitionRefused, match="restricted"):
        result_automate(
            actor=retoucher,
            order=working,
            photo=Photo(order=working),
            steps=[("auto_contrast", {"clip": 0.5})],
        )
    lift(committed, ticket, privacy_officer)
    order_start_work(actor=retoucher, order=paid)
    paid.refresh_from_db()
    assert paid.status == OrderStatus.IN_PROGRESS


# --- Passport delivery --------------------------------------------------------------------------


def test_paid_passport_of_a_restricted_guest_waits_then_is_delivered_DSR_1(
    committed, privacy_officer
) -> None:
    order = Order.objects.create(
        kind=OrderKind.PASSPORT,
        guest_email="traveller@example.com",
        document="us_passport",
        amount_minor=700,
    )
    for kind in (ResultKind.PREVIEW, ResultKind.PASSPORT_DIGITAL, ResultKind.PASSPORT_SHEET):
        Result.objects.create(order=order, kind=kind, file=f"o/x/r/{kind}.jpg", ready=True)
    order_transition(actor=None, order=order, to=OrderStatus.SUBMITTED, actor_role="customer")
    Payment.objects.create(
        order=order, gateway="test", reference="pay_1", amount_minor=700, currency=order.currency
    )
    ticket = restrict(committed, email="Traveller@Example.com")
    event = GatewayEvent(
        event_id="evt_1",
        reference="pay_1",
        outcome=GatewayOutcome.SUCCEEDED,
        amount_minor=700,
        currency=order.currency.upper(),
        order_ref=order.reference,
    )
    with committed():
        payment_event_apply(gateway_name="test", event=event)  # paid: never a crash
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.failure_message == HOLD_MESSAGE
    lift(committed, ticket, privacy_officer)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED and order.failure_message == ""


# --- Marketing sends ------------------------------------------------------------------------------


@pytest.fixture
def marketer(settings: Any, roles_present: None) -> User:
    settings.SELLER_ADDRESS = SELLER_ADDRESS
    settings.SELLER_NAME = "Clearframe Photo Ltd"
    settings.SITE_URL = "https://photos.example.org"
    settings.MARKETING_FROM_EMAIL = "news@photos.example.org"
    return UserFactory(email="mia@example.com", role=roles.MARKETING)


def test_campaign_skips_restricted_subjects_at_send_time_DSR_1(
    committed, customer, marketer, privacy_officer, django_capture_on_commit_callbacks
) -> None:
    subscriber_make(customer.email, user=customer)
    subscriber_make("guest.reader@example.com")
    subscriber_make("free@example.com")
    campaign = campaign_make()
    with django_capture_on_commit_callbacks(execute=False) as started:
        assert campaign_start(campaign=campaign, actor=marketer) == 3
    # Restricted after the start, before the batch runs: decided at send time.
    by_account = restrict(committed, user=customer)
    by_address = restrict(committed, email="guest.reader@example.com")
    mail.outbox.clear()
    for callback in started:
        callback()
    assert [m.to for m in mail.outbox] == [["free@example.com"]]
    skipped = CampaignSend.objects.filter(campaign=campaign, status="skipped")
    assert skipped.count() == 2 and "restricted" in skipped.first().last_error
    assert campaign_recipients(campaign=campaign_make()).count() == 1

    lift(committed, by_account, privacy_officer)
    lift(committed, by_address, privacy_officer)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        campaign_start(campaign=campaign_make(subject="Again"), actor=marketer)
    marketing = sorted(m.to[0] for m in mail.outbox if m.subject == "Again")
    assert marketing == [customer.email, "free@example.com", "guest.reader@example.com"]


# --- Portfolio publication ------------------------------------------------------------------------


def test_portfolio_items_go_down_and_publication_is_refused_while_restricted_DSR_1(
    committed, customer, privacy_officer
) -> None:
    _, (live_result, other_result) = delivered_order(
        customer, kinds=(ResultKind.RETOUCHED, ResultKind.AUTOMATED)
    )
    client = login_client(customer)
    assert grant(client, live_result).status_code == 302
    assert grant(client, other_result).status_code == 302
    publisher = marketing_user()
    with committed():
        item = portfolio_publish(result=live_result, actor=publisher)
    item.refresh_from_db()
    assert item.after and default_storage.exists(item.after.name)
    copy = item.after.name

    ticket = restrict(committed, user=customer)
    item.refresh_from_db()
    assert item.status == PortfolioStatus.UNPUBLISHED and not item.after
    assert not default_storage.exists(copy)
    ticket.refresh_from_db()
    assert ticket.outcome["portfolio_taken_down"] == 1
    with pytest.raises(PortfolioRefused, match="restricted"):
        portfolio_publish(result=other_result, actor=publisher)
    assert not PortfolioItem.objects.filter(status=PortfolioStatus.PUBLISHED).exists()

    lift(committed, ticket, privacy_officer)
    with committed():
        again = portfolio_publish(result=other_result, actor=publisher)
    assert again.status == PortfolioStatus.PUBLISHED


# --- Profiling: audiences -------------------------------------------------------------------------


def test_audience_building_leaves_out_restricted_customers_DSR_1(
    committed, customer, other_customer, marketer, privacy_officer
) -> None:
    for buyer in (customer, other_customer):
        Order.objects.create(
            customer=buyer,
            kind=OrderKind.PASSPORT,
            status=OrderStatus.PAID,
            paid_at=timezone.now(),
            amount_minor=700,
        )
    audience = Audience.objects.create(name="Buyers", rule=AudienceRule.PASSPORT_CUSTOMERS)
    assert audience_build(audience=audience, actor=marketer) == 2
    ticket = restrict(committed, user=customer)
    assert processing_restricted(user=customer)
    assert audience_build(audience=audience, actor=marketer) == 1
    assert list(AudienceMember.objects.values_list("user", flat=True)) == [other_customer.pk]
    lift(committed, ticket, privacy_officer)
    assert audience_build(audience=audience, actor=marketer) == 2


def test_restriction_keeps_the_data_DSR_1(committed, customer) -> None:
    """Data is kept: the restriction deletes nothing of the order or its photos."""
    order, _ = delivered_order(customer)
    files = [r.file.name for r in Result.objects.filter(order=order)]
    restrict(committed, user=customer)
    assert Order.objects.filter(pk=order.pk).exists()
    assert all(default_storage.exists(name) for name in files)
    assert Photo.objects.get(order=order).file
