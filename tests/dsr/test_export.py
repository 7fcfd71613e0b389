"""The access/portability export archive (DSR-1): contents, isolation, schema, resumption,
storage faults, one archive per ticket, and its deletion at expiry."""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from botocore.config import Config
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts.models import Notification, RequestLog, User
from consent.models import ConsentEvent, ConsentMethod, ConsentPurpose
from consent.services.ledger import consent_record
from dsr.models import (
    ArchiveStatus,
    Channel,
    ExportArchive,
    IdentityCheck,
    RequestType,
    Ticket,
    TicketEventKind,
    TicketStatus,
)
from dsr.registry import registry
from dsr.services import export as export_service
from dsr.services.export import export_build, export_resume
from dsr.services.export_archive import SCHEMA, entry_columns
from dsr.services.retention import retention_run_all
from dsr.services.tickets import ticket_create
from images.models import Photo, PhotoStatus, Result, ResultKind, ScanVerdict
from orders.models import Invoice, Order, OrderKind, OrderStatus, Payment
from tests.conftest import s3_bucket
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


# --- Seeding a subject ------------------------------------------------------------------------
def _bytes(tag: str) -> bytes:
    return b"\xff\xd8\xff\xe0" + hashlib.sha256(tag.encode()).digest() * 40 + b"\xff\xd9"


def _order(*, customer: User | None, email: str = "", tag: str, n: int = 0) -> Order:
    order = Order.objects.create(
        kind=OrderKind.RETOUCH if customer else OrderKind.PASSPORT,
        status=OrderStatus.DELIVERED,
        customer=customer,
        guest_email=email,
        instructions=f"Brighten it please ({tag})",
        amount_minor=900,
        paid_at=timezone.now(),
    )
    photo_name = default_storage.save(f"o/{order.storage_token}/p/1.jpg", ContentFile(_bytes(tag)))
    photo = Photo.objects.create(
        order=order,
        file=photo_name,
        status=PhotoStatus.READY,
        scan=ScanVerdict.CLEAN,
        instructions=f"photo note {tag}",
    )
    result_name = default_storage.save(
        f"o/{order.storage_token}/r/1.jpg", ContentFile(_bytes(tag + "-result"))
    )
    Result.objects.create(order=order, photo=photo, kind=ResultKind.RETOUCHED, file=result_name)
    payment = Payment.objects.create(
        order=order,
        gateway="test",
        reference=f"pay-{uuid.uuid4().hex[:10]}",
        amount_minor=900,
        currency="EUR",
        status="succeeded",
    )
    Invoice.objects.create(
        series="INV",
        number=Invoice.objects.count() + 1,
        order=order,
        customer=customer,
        buyer_name=customer.full_name if customer else "",
        buyer_email=customer.email if customer else email,
        description=f"Retouching ({tag})",
        total_minor=900,
        currency="EUR",
        payment_reference=payment.reference,
    )
    return order


def _log(user: User, path: str) -> RequestLog:
    return RequestLog.objects.create(
        request_id=uuid.uuid4(),
        time=timezone.now(),
        ip_address="203.0.113.9",
        method="GET",
        path=path,
        user=user,
        status=200,
    )


def _subject_data(user: User, tag: str) -> None:
    _order(customer=user, tag=tag)
    _log(user, f"/orders/{tag}/")
    _log(user, "/privacy/")
    Notification.objects.create(user=user, title=f"Your order is ready ({tag})")
    consent_record(
        purpose=ConsentPurpose.MARKETING_EMAIL, granted=True, method=ConsentMethod.FORM, user=user
    )
    profile = default_storage.save(f"profile-images/{tag}.jpg", ContentFile(_bytes(tag + "-me")))
    User.objects.filter(pk=user.pk).update(profile_image=profile)


def _account_request(user: User) -> Ticket:
    return ticket_create(
        type=RequestType.ACCESS,
        channel=Channel.ACCOUNT,
        actor=user,
        user=user,
        identity_check=IdentityCheck.LOGIN,
    ).ticket


def _zip(archive: ExportArchive) -> zipfile.ZipFile:
    with default_storage.open(archive.file.name, "rb") as fh:
        return zipfile.ZipFile(io.BytesIO(fh.read()))


def _doc(zf: zipfile.ZipFile, label: str) -> dict[str, Any]:
    return json.loads(zf.read(f"data/{label}.json"))


@pytest.fixture
def two_customers(customer: User, other_customer: User) -> tuple[User, User]:
    _subject_data(customer, "casey")
    _subject_data(other_customer, "olive")
    # A guest order placed with the customer's verified address is the customer's too;
    # one with the other's address is not, nor one of a stranger.
    _order(customer=None, email=customer.email, tag="casey-guest")
    _order(customer=None, email=other_customer.email, tag="olive-guest")
    _order(customer=None, email="stranger@example.com", tag="stranger")
    return customer, other_customer


# --- Contents and isolation -------------------------------------------------------------------
def test_export_holds_the_subjects_data_files_and_invoices_and_nothing_else_DSR_1(
    two_customers: tuple[User, User], committed: Any
) -> None:
    customer, other = two_customers
    with committed():
        ticket = _account_request(customer)
    ticket.refresh_from_db()
    archive = ticket.archive
    assert archive.status == ArchiveStatus.READY and ticket.status == TicketStatus.FULFILLED
    assert archive.expires_at is not None and archive.ready_at is not None
    assert archive.expires_at - archive.ready_at == timedelta(days=7)
    zf = _zip(archive)
    names = set(zf.namelist())

    log = _doc(zf, "accounts.RequestLog")
    assert {r["path"] for r in log["rows"]} == {"/orders/casey/", "/privacy/"}
    assert log["row_count"] == 2
    orders = _doc(zf, "orders.Order")
    assert sorted(r["instructions"] for r in orders["rows"]) == [
        "Brighten it please (casey)",
        "Brighten it please (casey-guest)",
    ]
    consent = _doc(zf, "consent.ConsentEvent")
    assert [r["purpose"] for r in consent["rows"]] == ["marketing_email"]
    titles = [r["title"] for r in _doc(zf, "accounts.Notification")["rows"]]
    assert "Your order is ready (casey)" in titles
    assert {r["reference"] for r in _doc(zf, "dsr.Ticket")["rows"]} == {ticket.reference}
    assert _doc(zf, "accounts.User")["rows"][0]["email"] == customer.email

    # Files: the customer's photos, results and profile picture, byte for byte.
    photos = _doc(zf, "images.Photo")["rows"]
    assert len(photos) == 2 and all(r["order"] for r in photos)
    for row in photos:
        assert row["files"]["file"] in names
    blobs = [zf.read(n) for n in names if n.startswith("files/")]
    assert _bytes("casey") in blobs and _bytes("casey-guest-result") in blobs
    assert _bytes("casey-me") in blobs and len(blobs) == 5  # 2 photos, 2 results, profile
    invoices = sorted(n for n in names if n.startswith("invoices/"))
    assert len(invoices) == 2
    assert b"Retouching (casey)" in b"".join(zf.read(n) for n in invoices)

    # Nothing of the other customer, the other's guest order, or the stranger, anywhere.
    everything = b"".join(zf.read(n) for n in names)
    for foreign in (other.email, "olive", "stranger", other.full_name):
        assert foreign.encode() not in everything, foreign
    for blob in (_bytes("olive"), _bytes("olive-guest"), _bytes("stranger")):
        assert blob not in blobs
    assert archive.contents["entries"]["accounts.RequestLog"] == {"rows": 2, "files": 0}
    assert archive.contents["files"] == 5 and archive.contents["invoices"] == 2


def test_guest_export_has_only_rows_of_the_verified_email_DSR_1(
    two_customers: tuple[User, User], committed: Any
) -> None:
    """A public-form requester gets the guest rows of the address they proved; rows
    linked to an account stay with that account even when they carry the address."""
    customer, _ = two_customers
    _order(customer=None, email="guest@example.com", tag="guest-own")
    with committed():
        ticket = ticket_create(
            type=RequestType.PORTABILITY,
            channel=Channel.PUBLIC_FORM,
            actor=None,
            email="Guest@Example.com",
            identity_check=IdentityCheck.EMAIL_CODE,
        ).ticket
    zf = _zip(ExportArchive.objects.get(ticket=ticket))
    orders = _doc(zf, "orders.Order")["rows"]
    assert [r["instructions"] for r in orders] == ["Brighten it please (guest-own)"]
    assert "data/accounts.User.json" not in zf.namelist()  # no account: nothing to find
    assert "data/accounts.RequestLog.json" not in zf.namelist()

    with committed():
        by_email = ticket_create(
            type=RequestType.ACCESS,
            channel=Channel.PUBLIC_FORM,
            actor=None,
            email=customer.email,
            identity_check=IdentityCheck.EMAIL_CODE,
        ).ticket
    zf = _zip(ExportArchive.objects.get(ticket=by_email))
    assert [r["instructions"] for r in _doc(zf, "orders.Order")["rows"]] == [
        "Brighten it please (casey-guest)"
    ]
    # The account's own rows need the account's login, not just its address.
    assert "data/accounts.Notification.json" not in zf.namelist()


def test_every_document_follows_the_versioned_schema_and_the_manifest_checks_out_DSR_1(
    two_customers: tuple[User, User], committed: Any
) -> None:
    customer, _ = two_customers
    with committed():
        ticket = _account_request(customer)
    zf = _zip(ticket.archive)
    docs = [n for n in zf.namelist() if n.startswith("data/")]
    assert docs
    for name in docs:
        doc = json.loads(zf.read(name))
        assert doc["schema"] == SCHEMA == "dsr-export/1"
        for key in ("entry", "description", "purpose", "lawful_basis", "categories", "fields"):
            assert doc[key], (name, key)
        assert "retention" in doc and "on_erasure" in doc
        assert doc["row_count"] == len(doc["rows"]) > 0
        declared = {f["name"] for f in doc["fields"]} | {"id"}
        for row in doc["rows"]:
            assert set(row) <= declared, (name, set(row) - declared)
    log = json.loads(zf.read("data/accounts.RequestLog.json"))
    assert log["lawful_basis"] and log["purpose"]["key"] == "operations"
    assert timezone.datetime.fromisoformat(log["rows"][0]["time"]).tzinfo is not None

    manifest = json.loads(zf.read("manifest.json"))
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(zf.namelist()) - {"manifest.json"}
    for path, meta in listed.items():
        data = zf.read(path)
        assert meta["size"] == len(data) and meta["sha256"] == hashlib.sha256(data).hexdigest()
    # Photos are stored as they are; JSON and HTML are compressed.
    info = {i.filename: i for i in zf.infolist()}
    assert next(i for n, i in info.items() if n.startswith("files/")).compress_type == 0
    assert info["index.html"].compress_type == zipfile.ZIP_DEFLATED

    index = zf.read("index.html").decode()
    assert "How to complain" in index and "supervisory authority" in index  # DSR-6
    assert "Server request log" in index and "30 days after the request" in index
    assert (
        ticket.archive.sha256
        == hashlib.sha256(default_storage.open(ticket.archive.file.name).read()).hexdigest()
    )


def test_every_exported_foreign_key_is_resolvable() -> None:
    """Each entry's columns are valid ORM lookups (an empty query proves them)."""
    for entry in registry:
        columns = entry_columns(entry) if entry.export_fields else []
        if columns:
            list(entry.model._default_manager.values_list(*[c.lookup for c in columns])[:1])


def test_the_fulfilled_email_carries_the_download_link_DSR_1(
    customer: User, committed: Any, mailoutbox: list[Any], settings: Any
) -> None:
    settings.SITE_URL = "https://photos.test"
    with committed():
        ticket = _account_request(customer)
    bodies = "\n".join(m.body for m in mailoutbox if customer.email in m.to)
    match = re.search(r"https://photos\.test/privacy/requests/download/([^/\s]+)/", bodies)
    assert match, bodies
    assert export_service.export_archive_for_token(token=match.group(1)) == ticket.archive


# --- One archive, resumable, idempotent -------------------------------------------------------
def test_second_delivery_finds_it_ready_and_does_nothing(customer: User, committed: Any) -> None:
    with committed():
        ticket = _account_request(customer)
    archive = ticket.archive
    assert export_build(archive_id=archive.pk) == "not claimed"
    again = ExportArchive.objects.get(pk=archive.pk)
    assert again.attempts == 1 and again.sha256 == archive.sha256
    assert ticket.events.filter(to_status=TicketStatus.FULFILLED).count() == 1


def test_worker_killed_mid_export_is_resumed_and_leaves_exactly_one_archive_DSR_1(
    settings: Any, customer: User, autocommit: None
) -> None:
    client, bucket = s3_bucket(settings, versioned=True)
    _subject_data(customer, "casey")
    ticket = _account_request(customer)  # the message is lost with the killed worker
    archive = ExportArchive.objects.get(ticket=ticket)
    # A worker claimed it, named the key, wrote part of an object, then died.
    name = f"dsr-exports/{ticket.reference}/half.zip"
    default_storage.save(name, ContentFile(b"PK\x03\x04 half a zip"))
    ExportArchive.objects.filter(pk=archive.pk).update(
        status=ArchiveStatus.BUILDING, claimed_at=timezone.now(), attempts=1, file=name
    )
    # While the claim is live (the worker may still be at it), nobody else builds...
    assert export_build(archive_id=archive.pk) == "not claimed"
    assert export_resume(now=timezone.now()) == 0
    # ...once it is older than the hard time limit, the sweep resumes it (eagerly here).
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120)
    ExportArchive.objects.filter(pk=archive.pk).update(claimed_at=long_ago)
    assert export_resume(now=timezone.now()) == 1
    archive.refresh_from_db()
    assert archive.status == ArchiveStatus.READY and archive.attempts == 2
    versions = client.list_object_versions(Bucket=bucket, Prefix="dsr-exports/")
    keys = [v["Key"] for v in versions.get("Versions", [])]
    assert keys == [name], keys  # one object, one version: the half one is gone
    assert not versions.get("DeleteMarkers")
    assert zipfile.ZipFile(io.BytesIO(client.get_object(Bucket=bucket, Key=name)["Body"].read()))


def test_storage_down_blocks_the_ticket_then_the_sweep_retries_with_backoff_DSR_1(
    settings: Any, customer: User, committed: Any
) -> None:
    s3_bucket(settings)
    _subject_data(customer, "casey")
    working = settings.STORAGES
    # The storage goes away: nothing listens on this port.
    down = {**working, "default": {**working["default"]}}
    down["default"]["OPTIONS"] = {
        **working["default"]["OPTIONS"],
        "endpoint_url": "http://127.0.0.1:9",
        "client_config": Config(retries={"max_attempts": 1}, connect_timeout=1),
    }
    settings.STORAGES = down
    with committed():
        ticket = _account_request(customer)
    ticket.refresh_from_db()
    archive = ticket.archive
    assert archive.status == ArchiveStatus.FAILED
    assert "EndpointConnectionError" in archive.last_error
    assert ticket.status == TicketStatus.IN_PROGRESS  # never fulfilled with no archive
    assert "storage or database unavailable" in ticket.blocked_reason
    assert ticket.events.filter(kind=TicketEventKind.STEP, note__startswith="Blocked").exists()

    settings.STORAGES = working
    # Backoff: not retried at once...
    assert export_resume(now=timezone.now()) == 0
    # ...but a few minutes later, and then it succeeds.
    with committed():
        assert export_resume(now=timezone.now() + timedelta(minutes=5)) == 1
    ticket.refresh_from_db()
    assert ticket.archive.status == ArchiveStatus.READY
    assert ticket.status == TicketStatus.FULFILLED and ticket.blocked_reason == ""


def test_resume_picks_pending_archives_whose_message_was_lost(
    customer: User, autocommit: None
) -> None:
    ticket = _account_request(customer)
    archive = ExportArchive.objects.get(ticket=ticket)
    now = timezone.now()
    assert export_resume(now=now) == 0  # just created: its own message is on the way
    assert export_resume(now=now + timedelta(minutes=3)) == 1
    assert ExportArchive.objects.get(pk=archive.pk).status == ArchiveStatus.READY


def test_a_closed_ticket_is_not_built(customer: User, autocommit: None) -> None:
    ticket = _account_request(customer)
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.REJECTED)
    archive = ExportArchive.objects.get(ticket=ticket)
    assert export_build(archive_id=archive.pk) == "ticket not open"
    assert ExportArchive.objects.get(pk=archive.pk).status == ArchiveStatus.FAILED
    assert export_resume(now=timezone.now() + timedelta(days=1)) == 0


# --- Retention -------------------------------------------------------------------------------
def test_archive_and_its_file_are_deleted_at_expiry_DSR_1(customer: User, committed: Any) -> None:
    with committed():
        ticket = _account_request(customer)
    archive = ticket.archive
    name = archive.file.name
    assert default_storage.exists(name)
    retention_run_all(force=True)
    assert ExportArchive.objects.filter(pk=archive.pk).exists()  # not yet expired
    ExportArchive.objects.filter(pk=archive.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    retention_run_all(force=True)
    assert not ExportArchive.objects.filter(pk=archive.pk).exists()
    assert not default_storage.exists(name)


def test_consent_given_by_email_before_the_account_is_exported_without_others_DSR_1(
    customer: User, other_customer: User
) -> None:
    """Consent events keyed by email only (a newsletter sign-up before the account)."""
    purpose = ConsentPurpose.objects.get(key=ConsentPurpose.MARKETING_EMAIL)
    consent_record(
        purpose=purpose.key, granted=True, method=ConsentMethod.FORM, email=customer.email
    )
    consent_record(
        purpose=purpose.key, granted=True, method=ConsentMethod.FORM, email=other_customer.email
    )
    assert ConsentEvent.objects.count() == 2
    ticket = _account_request(customer)
    archive = ExportArchive.objects.get(ticket=ticket)
    assert export_build(archive_id=archive.pk) == "ready"
    zf = _zip(ExportArchive.objects.get(pk=archive.pk))
    rows = _doc(zf, "consent.ConsentEvent")["rows"]
    assert len(rows) == 1
    assert other_customer.email.encode() not in b"".join(zf.read(n) for n in zf.namelist())


def test_unverified_account_email_does_not_pull_in_guest_rows(committed: Any) -> None:
    """Only an address the subject proved: an unverified account gets its own rows only."""
    user = UserFactory(email="unproven@example.com", email_verified_at=None)
    _order(customer=None, email=user.email, tag="unproven-guest")
    with committed():
        ticket = _account_request(user)
    zf = _zip(ticket.archive)
    assert "data/orders.Order.json" not in zf.namelist()


def test_an_archive_given_up_on_goes_a_week_after_its_last_attempt_with_its_file(
    customer: User, autocommit: None
) -> None:
    """Its request closed while it was failing: never retried, and never left behind."""
    ticket = _account_request(customer)
    archive = ExportArchive.objects.get(ticket=ticket)
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.REJECTED)
    assert export_build(archive_id=archive.pk) == "ticket not open"
    name = f"dsr-exports/{ticket.reference}/left.zip"
    default_storage.save(name, ContentFile(b"PK half"))
    ExportArchive.objects.filter(pk=archive.pk).update(file=name)
    archive.refresh_from_db()
    assert archive.expires_at is not None  # set by the attempt
    retention_run_all(force=True)
    assert ExportArchive.objects.filter(pk=archive.pk).exists()
    ExportArchive.objects.filter(pk=archive.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    retention_run_all(force=True)
    assert not ExportArchive.objects.filter(pk=archive.pk).exists()
    assert not default_storage.exists(name)
