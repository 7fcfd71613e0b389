"""Erasure of a data subject, driven by the registry (DSR-3, ORD-4).

A "rich" customer holds something in every kind of record the site keeps; the erasure
runs for real (PostgreSQL, a versioned bucket on the moto S3 server where the test says
so) and the tests look at the data afterwards, not at the erasure's own report.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessLog
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import models
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditAction, AuditEvent, Notification, RecoveryCode, RequestLog, User
from accounts.services import audit_log_write
from common.models import FanoutStatus
from consent.models import (
    CampaignSend,
    ConsentEvent,
    MarketingSuppression,
    PolicyNoticeSend,
    PolicyVersion,
    Subscriber,
)
from consent.services.marketing import marketing_subscribe_user
from consent.services.suppression import email_suppressed, suppression_hash
from dsr.models import (
    ArchiveStatus,
    Channel,
    ExportArchive,
    IdentityCheck,
    ProcessingRestriction,
    RequestType,
    StepStatus,
    Ticket,
    TicketStatus,
    VerificationChallenge,
)
from dsr.registry import erased_email, registry
from dsr.services.erasure import (
    erasure_approve,
    erasure_leftovers,
    erasure_resume,
    erasure_run,
)
from dsr.services.tickets import TicketRefused, ticket_create, ticket_verify
from images.models import Photo, PortfolioItem, Result
from orders.models import ActorRole, Invoice, Order, OrderEvent, OrderStatus, Payment
from orders.services.status import order_transition
from tests.conftest import login_client, s3_bucket
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

IMAGE = b"\xff\xd8\xff\xe0" + b"jpeg-bytes " * 200


def put(name: str, data: bytes = IMAGE) -> str:
    return default_storage.save(name, ContentFile(data))


@dataclass
class Rich:
    """A customer with something in every kind of record, and what to look for after."""

    user: User
    email: str
    client: Client
    order: Order
    guest_order: Order
    invoice: Invoice
    files: list[str] = field(default_factory=list)


def _order_with_files(rich_files: list[str], **fields: Any) -> tuple[Order, Result]:
    order = Order.objects.create(**fields)
    token = order.storage_token
    photo = Photo.objects.create(
        order=order,
        file=put(f"o/{token}/p/1.jpg"),
        scan="clean",
        status="ready",
        instructions="Please hide the scar on my left cheek",
    )
    put(f"o/{token}/p/1.jpg", IMAGE + b"v2")  # a second version of the same key
    result = Result.objects.create(
        order=order, photo=photo, kind="retouched", file=put(f"o/{token}/r/retouched-1.jpg")
    )
    orphan = put(f"q/{token}/{secrets.token_hex(8)}")  # an upload whose row never came
    rich_files += [str(photo.file.name), str(result.file.name), orphan]
    return order, result


def rich_customer(
    email: str = "erin@example.com", staff: User | None = None, name: str = "Erin Erasure"
) -> Rich:
    files: list[str] = []
    user: User = UserFactory.create(
        email=email,
        full_name=name,
        phone="+353 1 555 0101",
        street_address="1 Main Street",
        city="Dublin",
        postal_code="D01 X2Y3",
        vat_id="IE1234567X",
    )
    user.profile_image.name = put(f"profile-images/{secrets.token_hex(8)}.jpg")
    user.save(update_fields=["profile_image"])
    files.append(user.profile_image.name)
    now = timezone.now()
    order, result = _order_with_files(
        files,
        kind="retouch",
        customer=user,
        status=OrderStatus.DELIVERED,
        instructions="Make me look rested, Erin",
        amount_minor=1500,
        paid_at=now - timedelta(days=3),
        delivered_at=now - timedelta(days=1),
    )
    OrderEvent.objects.create(
        order=order, to_status="delivered", actor_role="customer", comment="Erin says thanks"
    )
    Payment.objects.create(
        order=order,
        gateway="fake",
        reference=f"pi_{uuid.uuid4().hex[:12]}",
        amount_minor=1500,
        currency="EUR",
        status="succeeded",
    )
    invoice = Invoice.objects.create(
        series="T",
        number=Invoice.objects.count() + 1,
        order=order,
        customer=user,
        buyer_name=name,
        buyer_email=email,
        buyer_address="1 Main Street, Dublin",
        buyer_country="IE",
        description="Retouching",
        total_minor=1500,
        tax_minor=280,
        currency="EUR",
        payment_reference="pi_secret_ref",
    )
    # A passport order bought as a guest with the same address, before signing up.
    guest_order, _ = _order_with_files(
        files, kind="passport", guest_email=email, status=OrderStatus.CLOSED
    )
    item = PortfolioItem.objects.create(
        customer=user,
        result=result,
        consent_target=f"result:{result.pk}",
        caption="Erin's portrait",
        before=put(f"portfolio/{secrets.token_hex(8)}-before.jpg"),
        after=put(f"portfolio/{secrets.token_hex(8)}-after.jpg"),
    )
    files += [str(item.before.name), str(item.after.name)]
    _account_records(user, email, staff)
    _consent_records(user)
    files.append(_earlier_requests(user, email))
    client = login_client(user)
    assert client.get("/accounts/profile/").status_code == 200
    return Rich(user, email, client, order, guest_order, invoice, files)


def _account_records(user: User, email: str, staff: User | None) -> None:
    Notification.objects.create(user=user, title="Your order is delivered", body="Hi Erin")
    audit_log_write(
        actor=user,
        action=AuditAction.PROFILE_UPDATED,
        subject=user,
        ip_address="203.0.113.9",
        detail={"fields": ["full_name"], "old_domain": "example.com"},
    )
    RecoveryCode.objects.create(user=user, code_hash=secrets.token_hex(32))
    TOTPDevice.objects.create(user=user, name="Erin's phone", confirmed=True)
    for i in range(5):
        RequestLog.objects.create(
            request_id=uuid.uuid4(),
            time=timezone.now() - timedelta(minutes=i),
            ip_address="203.0.113.9",
            method="GET",
            path=f"/orders/?q={i}",
            user=user,
            status=200,
        )
    AccessLog.objects.create(
        username=email, ip_address="203.0.113.9", user_agent="Firefox", attempt_time=timezone.now()
    )
    if staff is not None:
        LogEntry.objects.create(
            user=staff,
            content_type=ContentType.objects.get_for_model(User),
            object_id=str(user.pk),
            object_repr=str(user),
            action_flag=CHANGE,
            change_message="Changed phone.",
        )


def _consent_records(user: User) -> None:
    from consent.models import Campaign

    subscriber = marketing_subscribe_user(user=user)
    campaign = Campaign.objects.create(subject="Spring", body="Offer", status="sending")
    CampaignSend.objects.create(campaign=campaign, subscriber=subscriber)
    version = PolicyVersion.objects.create(number=900 + user.pk % 50, summary="Changes")
    PolicyNoticeSend.objects.create(version=version, user=user)


def _earlier_requests(user: User, email: str) -> str:
    """An answered access request with its archive, and a public-form one by email."""
    today = timezone.localdate()
    old = Ticket.objects.create(
        reference=f"DSR-{secrets.token_hex(4).upper()}",
        type=RequestType.ACCESS,
        channel=Channel.ACCOUNT,
        user=user,
        email=email,
        details="Everything about Erin please",
        status=TicketStatus.FULFILLED,
        calendar="IE",
        first_due=today,
    )
    archive = ExportArchive.objects.create(
        ticket=old, status=ArchiveStatus.READY, file=put(f"exports/{secrets.token_hex(8)}.zip")
    )
    public = Ticket.objects.create(
        reference=f"DSR-{secrets.token_hex(4).upper()}",
        type=RequestType.OBJECTION,
        channel=Channel.PUBLIC_FORM,
        email=email,
        details="Stop profiling Erin",
        status=TicketStatus.CLOSED,
        calendar="IE",
        first_due=today,
    )
    VerificationChallenge.objects.create(
        ticket=public, code_hash="x" * 64, expires_at=timezone.now()
    )
    ProcessingRestriction.objects.create(
        user=user,
        email=email,
        reason="Erin contests the accuracy",
        lifted_at=timezone.now(),
    )
    return archive.file.name


def close_account(user: User, committed: Any) -> Ticket:
    with committed():
        intake = ticket_create(
            type=RequestType.ERASURE,
            channel=Channel.ACCOUNT,
            actor=user,
            user=user,
            details="Close my account.",
            identity_check=IdentityCheck.LOGIN,
        )
    intake.ticket.refresh_from_db()
    return intake.ticket


def can_log_in(email: str) -> bool:
    """Does the password get past the first login step (logged in, or asked for 2FA)?"""
    client = Client()
    client.post("/accounts/login/", {"email": email, "password": PASSWORD})
    return "_auth_user_id" in client.session or "pre_2fa_user_id" in client.session


def stored_keys(client: Any, bucket: str) -> list[str]:
    """Every key with any version or delete marker left in the bucket."""
    keys: list[str] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        keys += [v["Key"] for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
    return keys


def email_mentions(address: str) -> dict[str, int]:
    """Rows of any model whose text (or JSON) fields contain *address*."""
    found: dict[str, int] = {}
    for model in apps.get_models():
        if not model._meta.managed or model._meta.proxy:
            continue
        text = [
            f
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField | models.JSONField)
        ]
        if not text:
            continue
        cond = models.Q()
        for f in text:
            lookup = "icontains" if not isinstance(f, models.JSONField) else "contains"
            if isinstance(f, models.JSONField):
                continue  # checked below as text
            cond |= models.Q(**{f"{f.name}__{lookup}": address})
        n = model._default_manager.filter(cond).count() if cond else 0
        for f in text:
            if isinstance(f, models.JSONField):
                n += sum(
                    1
                    for value in model._default_manager.values_list(f.name, flat=True)
                    if address in str(value).lower()
                )
        if n:
            found[model._meta.label] = n
    return found


# --- The whole erasure ------------------------------------------------------------------------
def test_full_erasure_of_a_rich_customer_on_versioned_s3_DSR_3_ORD_4(
    settings: Any, committed: Any, other_customer: User, support: User
) -> None:
    """DSR-3/ORD-4: files gone with every version, invoice kept reduced with kept_until,
    sessions ended, no login, suppression hash only, no plain address anywhere, audit
    rows without personal data, and another customer untouched."""
    s3, bucket = s3_bucket(settings, versioned=True)
    rich = rich_customer(staff=support)
    other = rich_customer("olga@example.com", name="Olga Other")
    other_keys = set(other.files)
    assert can_log_in(rich.email)
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email)  # the scan sees data

    ticket = close_account(rich.user, committed)

    assert ticket.status == TicketStatus.FULFILLED
    assert set(ticket.erasure_steps.values_list("status", flat=True)) == {StepStatus.DONE}
    # Files: every version of every file of the subject is gone; the other's are intact.
    left = set(stored_keys(s3, bucket))
    assert not left & set(rich.files)
    assert other_keys <= left
    # Invoice kept, reduced to what tax law needs, with its purge date in the receipt.
    invoice = Invoice.objects.get(pk=rich.invoice.pk)
    assert invoice.buyer_email == "" and invoice.payment_reference == ""
    assert invoice.buyer_name == "Erin Erasure" and invoice.total_minor == 1500
    purge = timezone.localdate(
        invoice.issued_at + timedelta(days=365 * settings.INVOICE_RETENTION_YEARS + 3)
    )
    kept = {k["records"]: k for k in ticket.outcome["kept"]}
    assert kept["orders.Invoice"]["until"]["latest"] == purge.isoformat()
    assert kept["orders.Invoice"]["rows"] == 1
    assert f"invoices are kept, reduced to what tax law needs, until {purge}" in (
        mail.outbox[-1].body
    )
    assert mail.outbox[-1].to == [rich.email]
    # The scan of every registry entry and the subject's storage keys finds nothing.
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email) == {}
    # Sessions ended, no login.
    user = User.objects.get(pk=rich.user.pk)
    assert rich.client.get("/accounts/profile/").status_code == 302
    assert not [
        s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(user.pk)
    ]
    assert user.email == erased_email(user) and not user.is_active
    assert user.full_name == "" and not user.has_usable_password()
    # Only a keyed hash of the address stays; nowhere else is it written.
    assert email_suppressed(rich.email)
    assert MarketingSuppression.objects.filter(email_hash=suppression_hash(rich.email)).exists()
    assert email_mentions(rich.email) == {}
    assert email_mentions("erin erasure") == {"orders.Invoice": 1}
    # Audit rows about the subject keep no personal data; the erasure's row has counts.
    for row in AuditEvent.objects.filter(subject=user):
        assert row.ip_address is None and row.detail == {}
    erased = AuditEvent.objects.get(action=AuditAction.DSR_ERASED)
    assert set(erased.detail) == {"ticket", "counts"}
    assert erased.detail["ticket"] == ticket.reference
    # The old address no longer logs in (a failed try is a new axes row, so last).
    assert not can_log_in(rich.email)
    # The other customer still has everything.
    assert erasure_leftovers(user_id=other.user.pk, email=other.email)
    assert other.client.get("/accounts/profile/").status_code == 200
    assert Photo.objects.filter(order__customer=other.user).count() == 1


def test_receipt_counts_without_personal_data_and_ticket_reduced_DSR_3(
    committed: Any, support: User
) -> None:
    rich = rich_customer(staff=support)
    ticket = close_account(rich.user, committed)
    receipt = ticket.outcome
    assert receipt["receipt"] == "erasure" and receipt["ticket"] == ticket.reference
    assert receipt["records"]["images.Photo"] == {"deleted": 2}
    assert receipt["records"]["accounts.RequestLog"] == {"deleted": 5}
    assert receipt["records"]["orders.Order"] == {"anonymised": 2}
    assert receipt["records"]["accounts.User"] == {"anonymised": 1}
    assert receipt["files"]["o/"] == 4 and receipt["files"]["q/"] == 2
    assert receipt["files"]["profile-images/"] == 1 and receipt["files"]["portfolio/"] == 2
    assert receipt["file_versions_deleted"] >= 6
    assert {k["records"] for k in receipt["kept"]} == {"orders.Invoice", "orders.Payment"}
    assert receipt["sessions_ended"] == 1
    assert receipt["queued_work"]["campaign_emails_dropped"] == 1
    assert receipt["queued_work"]["policy_notices_dropped"] == 1
    text = str(receipt).lower()
    assert "erin" not in text and "example.com" not in text
    # The ticket itself keeps the proof, not the person: told first, reduced after.
    assert ticket.email == "" and ticket.details == "" and ticket.outcome_note == ""
    assert ticket.events.filter(kind="subject_told").exists()
    assert not ticket.events.exclude(note="").exists()
    # Queued work of the subject is gone, and so are their consent records.
    assert not CampaignSend.objects.filter(status=FanoutStatus.PENDING).exists()
    assert not Subscriber.objects.exists() and not ConsentEvent.objects.exists()
    assert not PolicyNoticeSend.objects.exists()


def test_registry_covers_every_model_the_erasure_touches() -> None:
    """Every registry entry is handled by a step (no entry silently skipped)."""
    from dsr.services.erasure_steps import HANDLED_APART, entries_in_order

    labels = {e.label for e in entries_in_order()} | HANDLED_APART
    assert labels == {e.label for e in registry}
    order = [e.label for e in entries_in_order()]
    assert order.index("images.Result") < order.index("images.Photo")
    assert order.index("orders.Invoice") < order.index("orders.Order")
    assert order.index("consent.CampaignSend") < order.index("consent.Subscriber")


def test_running_the_erasure_again_changes_nothing_DSR_3(committed: Any) -> None:
    rich = rich_customer()
    ticket = close_account(rich.user, committed)
    before = list(ticket.erasure_steps.values_list("key", "rows_deleted", "rows_anonymised"))
    outbox = len(mail.outbox)
    with committed():
        assert erasure_run(ticket_id=ticket.pk) == "done"
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED
    after = list(ticket.erasure_steps.values_list("key", "rows_deleted", "rows_anonymised"))
    assert after == before and len(mail.outbox) == outbox
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email) == {}


# --- Guests, orders in progress, the waiting period -------------------------------------------
def test_guest_erasure_by_email_only_DSR_3(committed: Any, customer: User) -> None:
    files: list[str] = []
    order, _ = _order_with_files(
        files, kind="passport", guest_email="gus@example.com", status=OrderStatus.CLOSED
    )
    theirs, _ = _order_with_files(files[:0], kind="passport", customer=customer)
    with committed():
        intake = ticket_create(
            type=RequestType.ERASURE,
            channel=Channel.PUBLIC_FORM,
            actor=None,
            email="gus@example.com",
        )
        ticket_verify(ticket=intake.ticket, actor=None, method=IdentityCheck.EMAIL_CODE)
    ticket = Ticket.objects.get(pk=intake.ticket.pk)
    assert ticket.status == TicketStatus.FULFILLED
    assert not [n for n in files if default_storage.exists(n)]
    assert Order.objects.get(pk=order.pk).guest_email == ""
    assert not Photo.objects.filter(order=order).exists()
    assert Photo.objects.filter(order=theirs).exists()  # someone else's order: untouched
    assert email_suppressed("gus@example.com")
    assert "gus@example.com" in mail.outbox[-1].to
    assert ticket.outcome["subject"] == "email address only"
    assert email_mentions("gus@example.com") == {}


def test_order_in_progress_waits_for_a_staff_decision_DSR_3(committed: Any, support: User) -> None:
    rich = rich_customer()
    busy = Order.objects.create(
        kind="retouch", customer=rich.user, status=OrderStatus.PAID, paid_at=timezone.now()
    )
    ticket = close_account(rich.user, committed)
    assert ticket.status == TicketStatus.AWAITING_APPROVAL
    assert ticket.blocked_reason == (
        f"Orders in progress: {busy.reference}: finish or cancel them, then approve the erasure"
    )
    assert ticket.events.filter(note__contains=busy.reference).exists()
    assert "waits for your orders" in mail.outbox[-1].subject
    assert not ticket.erasure_steps.exists()  # nothing was touched yet
    assert Photo.objects.filter(order=rich.order).exists()

    with pytest.raises(TicketRefused, match=busy.reference):
        erasure_approve(ticket=ticket, actor=support)
    order_transition(
        actor=support, order=busy, to=OrderStatus.CANCELLED, actor_role=ActorRole.STAFF
    )
    with committed():
        ticket = erasure_approve(ticket=ticket, actor=support)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED and ticket.blocked_reason == ""
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email) == {}


def test_approve_refuses_a_ticket_not_waiting(committed: Any, support: User) -> None:
    rich = rich_customer()
    ticket = close_account(rich.user, committed)
    with pytest.raises(TicketRefused):
        erasure_approve(ticket=ticket, actor=support)


def test_account_closure_waiting_period_then_the_sweep_starts_it_DSR_3(
    settings: Any, committed: Any
) -> None:
    settings.DSR_CLOSE_ACCOUNT_WAIT_DAYS = 14
    rich = rich_customer()
    with committed():
        intake = ticket_create(
            type=RequestType.ERASURE,
            channel=Channel.ACCOUNT,
            actor=rich.user,
            user=rich.user,
            identity_check=IdentityCheck.LOGIN,
            not_before=timezone.now() + timedelta(days=14),
        )
    ticket = Ticket.objects.get(pk=intake.ticket.pk)
    assert ticket.status == TicketStatus.VERIFIED and not ticket.erasure_steps.exists()
    with committed():
        assert erasure_resume(now=timezone.now() + timedelta(days=1)) == 0
    assert User.objects.get(pk=rich.user.pk).is_active
    with committed():
        assert erasure_resume(now=timezone.now() + timedelta(days=15)) >= 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email) == {}


def test_queued_work_for_the_subject_becomes_a_no_op_DSR_3(committed: Any) -> None:
    """Work queued before the erasure finds nothing to do afterwards: image tasks for
    deleted photos return quietly, order emails go nowhere, fan-out items are gone."""
    from images import tasks as image_tasks
    from orders.tasks import order_status_email

    rich = rich_customer()
    draft = Order.objects.create(kind="retouch", customer=rich.user, status=OrderStatus.DRAFT)
    processing = Photo.objects.create(
        order=draft, upload=put(f"q/{draft.storage_token}/raw"), scan="clean", status="processing"
    )
    ready = Photo.objects.get(order=rich.order)
    result = Result.objects.get(order=rich.order)
    close_account(rich.user, committed)

    assert image_tasks.photo_process(processing.pk) == "skipped"
    assert image_tasks.photo_automate(ready.pk, [["exposure", {"amount": 0.2}]]) == "skipped"
    assert image_tasks.result_finalize(result.pk) == "skipped"
    sent = len(mail.outbox)
    assert order_status_email(rich.order.pk, "closed") is False
    assert len(mail.outbox) == sent
    assert not CampaignSend.objects.exists() and not PolicyNoticeSend.objects.exists()
    assert not default_storage.exists(str(processing.upload.name))
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email) == {}
