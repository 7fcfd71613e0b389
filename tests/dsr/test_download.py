"""Downloading an export archive (DSR-1): only the subject, only for 7 days, every download
audited; forged, expired, deleted or another subject's links never give a 500."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent, User
from dsr.models import (
    ArchiveStatus,
    Channel,
    ExportArchive,
    IdentityCheck,
    RequestType,
    Ticket,
    TicketEventKind,
)
from dsr.services.export import SIGNING_SALT, export_download_url
from dsr.services.tickets import ticket_create
from tests.conftest import login_client, s3_bucket

pytestmark = pytest.mark.django_db


def _ready(committed: Any, **kw: Any) -> Ticket:
    with committed():
        ticket = ticket_create(type=RequestType.ACCESS, actor=kw.get("user"), **kw).ticket
    ticket.refresh_from_db()
    assert ticket.archive.status == ArchiveStatus.READY
    return ticket


@pytest.fixture
def account_ticket(customer: User, committed: Any) -> Ticket:
    return _ready(
        committed, channel=Channel.ACCOUNT, user=customer, identity_check=IdentityCheck.LOGIN
    )


@pytest.fixture
def guest_ticket(committed: Any) -> Ticket:
    return _ready(
        committed,
        channel=Channel.PUBLIC_FORM,
        email="guest@example.com",
        identity_check=IdentityCheck.EMAIL_CODE,
    )


def _path(ticket: Ticket) -> str:
    return urlsplit(export_download_url(ticket=ticket)).path


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_owner_downloads_and_each_download_is_audited_DSR_1(
    account_ticket: Ticket, customer_client: Client, customer: User
) -> None:
    path = _path(account_ticket)
    page = customer_client.get(path)
    assert page.status_code == 200
    assert b"Download the archive" in page.content
    response = customer_client.get(path + "?get=1")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    archive = account_ticket.archive
    assert _body(response) == default_storage.open(archive.file.name).read()

    customer_client.get(path + "?get=1")
    archive.refresh_from_db()
    assert archive.downloads == 2
    audit = AuditEvent.objects.filter(action=AuditAction.DSR_EXPORT_DOWNLOADED)
    assert audit.count() == 2
    assert audit.first().actor == customer and audit.first().subject == customer
    assert audit.first().detail["ticket"] == account_ticket.reference
    assert account_ticket.events.filter(kind=TicketEventKind.DOWNLOAD).count() == 2


def test_anonymous_visitor_is_sent_to_log_in_first(account_ticket: Ticket, client: Client) -> None:
    path = _path(account_ticket)
    response = client.get(path + "?get=1")
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.path == "/accounts/login/"
    assert parse_qs(target.query)["next"] == [path + "?get=1"]
    assert not AuditEvent.objects.filter(action=AuditAction.DSR_EXPORT_DOWNLOADED).exists()


def test_another_customers_archive_is_not_found_DSR_1(
    account_ticket: Ticket, other_client: Client
) -> None:
    path = _path(account_ticket)
    for url in (path, path + "?get=1"):
        response = other_client.get(url)
        assert response.status_code == 404
        assert b"no such archive" in response.content
    assert ExportArchive.objects.get(pk=account_ticket.archive.pk).downloads == 0


def test_forged_link_is_a_clear_404(customer_client: Client, account_ticket: Ticket) -> None:
    path = _path(account_ticket)
    token = path.rstrip("/").rsplit("/", 1)[1]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad in (forged, "garbage", signing.dumps({"a": "x"}, salt=SIGNING_SALT)):
        response = customer_client.get(f"/privacy/requests/download/{bad}/")
        assert response.status_code == 404
        assert b"not valid" in response.content
    # A valid signature on another salt (another feature's token) is no key either.
    other = signing.dumps({"a": account_ticket.archive.pk, "t": account_ticket.reference})
    assert customer_client.get(f"/privacy/requests/download/{other}/").status_code == 404


def test_link_older_than_7_days_is_410(
    account_ticket: Ticket, customer_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    eight_days_ago = time.time() - 8 * 86400
    monkeypatch.setattr(signing.time, "time", lambda: eight_days_ago)
    old = export_download_url(ticket=account_ticket)
    monkeypatch.undo()
    response = customer_client.get(urlsplit(old).path)
    assert response.status_code == 410
    assert b"expired" in response.content and b"Ask for a new copy" in response.content


def test_expired_or_deleted_archive_is_410(account_ticket: Ticket, customer_client: Client) -> None:
    path = _path(account_ticket)
    ExportArchive.objects.filter(ticket=account_ticket).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert customer_client.get(path + "?get=1").status_code == 410
    ExportArchive.objects.filter(ticket=account_ticket).delete()
    response = customer_client.get(path)
    assert response.status_code == 410 and b"deleted" in response.content


def test_archive_not_ready_is_not_served(account_ticket: Ticket, customer_client: Client) -> None:
    path = _path(account_ticket)
    ExportArchive.objects.filter(ticket=account_ticket).update(status=ArchiveStatus.BUILDING)
    response = customer_client.get(path + "?get=1")
    assert response.status_code == 404 and b"not ready" in response.content


def test_file_gone_from_storage_is_410_not_500(
    account_ticket: Ticket, customer_client: Client
) -> None:
    default_storage.delete(account_ticket.archive.file.name)
    response = customer_client.get(_path(account_ticket) + "?get=1")
    assert response.status_code == 410
    assert not AuditEvent.objects.filter(action=AuditAction.DSR_EXPORT_DOWNLOADED).exists()


def _code(mailoutbox: list[Any]) -> str:
    body = mailoutbox[-1].body
    match = re.search(r"^\s+(\d{6})\s*$", body, re.M)
    assert match, body
    return match.group(1)


def test_guest_downloads_after_a_code_sent_to_the_request_email_DSR_1(
    guest_ticket: Ticket, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    path = _path(guest_ticket)
    page = client.get(path)
    assert page.status_code == 200 and b"g***@example.com" in page.content
    assert b"Download the archive" not in page.content
    assert client.get(path + "?get=1").status_code == 200  # the code page, no file
    assert not AuditEvent.objects.filter(action=AuditAction.DSR_EXPORT_DOWNLOADED).exists()

    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(path, {"action": "send"}).status_code == 302
    assert mailoutbox[-1].to == ["guest@example.com"]
    assert "download" in mailoutbox[-1].subject.lower()
    code = _code(mailoutbox)

    wrong = "000000" if code != "000000" else "111111"
    response = client.post(path, {"action": "verify", "code": wrong})
    assert response.status_code == 400 and b"not right" in response.content
    assert client.post(path, {"action": "verify", "code": code}).status_code == 302
    response = client.get(path + "?get=1")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert _body(response)[:2] == b"PK"
    event = AuditEvent.objects.get(action=AuditAction.DSR_EXPORT_DOWNLOADED)
    assert event.actor is None and event.detail["ticket"] == guest_ticket.reference

    # The right to download stays with that browser's session only.
    assert Client().get(path + "?get=1").get("Content-Type", "").startswith("text/html")


def test_guest_code_is_locked_after_five_wrong_tries(
    guest_ticket: Ticket, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    path = _path(guest_ticket)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(path, {"action": "send"})
    code = _code(mailoutbox)
    wrong = "000000" if code != "000000" else "111111"
    statuses = [
        client.post(path, {"action": "verify", "code": wrong}).status_code for _ in range(5)
    ]
    assert statuses == [400, 400, 400, 400, 403]
    response = client.post(path, {"action": "verify", "code": code})
    assert response.status_code == 403 and b"locked" in response.content
    assert client.get(path + "?get=1")["Content-Type"].startswith("text/html")


def test_on_s3_the_download_is_a_presigned_link_of_at_most_5_minutes(
    settings: Any, customer: User, committed: Any
) -> None:
    client, bucket = s3_bucket(settings)
    ticket = _ready(
        committed, channel=Channel.ACCOUNT, user=customer, identity_check=IdentityCheck.LOGIN
    )
    key = ticket.archive.file.name
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    response = login_client(customer).get(_path(ticket) + "?get=1")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert int(query["X-Amz-Expires"][0]) <= 300
    assert "attachment" in query["response-content-disposition"][0]
    assert AuditEvent.objects.filter(action=AuditAction.DSR_EXPORT_DOWNLOADED).count() == 1
