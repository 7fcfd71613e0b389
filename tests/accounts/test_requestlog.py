"""The request log: recording (LOG-1), buffered writes, statistics (LOG-3), export (LOG-4)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent, DailyUsage, RequestLog
from accounts.services import requestlog
from dsr.services.retention import retention_run_all
from tests.conftest import login_client

pytestmark = pytest.mark.django_db

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture(autouse=True)
def empty_buffer():
    client = requestlog._redis()
    assert client is not None, "the request-log tests need REDIS_URL (make test sets it)"
    key = settings.REQUEST_LOG_BUFFER_KEY
    client.delete(key, key + ":processing")
    yield client
    client.delete(key, key + ":processing")


def test_every_request_is_buffered_not_written_in_the_request_LOG_1(client, empty_buffer) -> None:
    client.get("/privacy/?page=2", HTTP_USER_AGENT=CHROME)
    assert RequestLog.objects.count() == 0  # nothing written on the hot path
    assert empty_buffer.llen(settings.REQUEST_LOG_BUFFER_KEY) == 1


def test_flushed_line_has_every_field_LOG_1(customer, empty_buffer) -> None:
    c = login_client(customer)
    c.get(
        "/accounts/profile/?page=3",
        HTTP_USER_AGENT=CHROME,
        REMOTE_ADDR="198.51.100.23",
        HTTP_REFERER="https://search.example/q?q=secret-stuff",
        HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9",
    )
    assert requestlog.request_log_flush() == 1
    line = RequestLog.objects.get()
    assert line.ip_address == "198.51.100.23"
    assert line.method == "GET" and line.status == 200
    assert line.path == "/accounts/profile/?page=3"
    assert line.user_id == customer.pk
    assert line.bytes_sent > 1000
    assert (line.browser, line.os) == ("Chrome", "Windows")
    assert line.referrer == "https://search.example/q?q=…"
    assert line.language == "fr-FR,fr;q=0.9"
    assert abs((timezone.now() - line.time).total_seconds()) < 60


def test_form_submissions_keep_the_address_LOG_1(client) -> None:
    client.post(
        "/accounts/login/", {"email": "x@example.com", "password": "nope"}, REMOTE_ADDR="192.0.2.77"
    )
    requestlog.request_log_flush()
    line = RequestLog.objects.get(method="POST")
    assert line.ip_address == "192.0.2.77" and line.status == 400


def test_tokens_are_stripped_from_logged_urls(client) -> None:
    token = "eyJ1Ijo1LCJlIjoiYUBiLmMiLCJzIjoiMTIzNCJ9:1xUtod:lItPPKDZIl0ch03NhcRIX1AJhbRifv"
    client.get(f"/accounts/verify/{token}/")
    client.get("/accounts/reset/MQ/cx8l2m-5f3b1a9d0c7e6f5a4b3c2d1e0f9a8b7c/")
    client.get("/?token=abcdef0123456789abcdef&page=2&next=/accounts/profile/")
    requestlog.request_log_flush()
    paths = set(RequestLog.objects.values_list("path", flat=True))
    assert paths == {"/accounts/verify/…/", "/accounts/reset/MQ/…/", "/?token=…&page=2&next=…"}


def test_malformed_headers_and_huge_urls_are_logged_safely(client) -> None:
    response = client.get(
        "/" + "a" * 20000 + "\x00\x1b[31m",
        HTTP_USER_AGENT="\x00" * 5000 + "Mozilla",
        HTTP_REFERER="javascript:alert(1)",
        HTTP_ACCEPT_LANGUAGE="x" * 5000,
        REMOTE_ADDR="not-an-address",
    )
    assert response.status_code == 404
    requestlog.request_log_flush()
    line = RequestLog.objects.get()
    assert len(line.path) <= 500 and "\x00" not in line.path and "\x1b" not in line.path
    assert line.ip_address is None and line.referrer == "" and len(line.language) == 100


def test_redis_down_falls_back_to_a_direct_write(client, settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # clients are per address: no cache to clear
    assert client.get("/").status_code == 200
    assert RequestLog.objects.filter(path="/").count() == 1


def test_a_batch_left_by_a_dead_flusher_is_replayed_once(empty_buffer) -> None:
    line = {
        "id": "0" * 31 + "1",
        "t": datetime.now(tz=UTC).timestamp(),
        "ip": "192.0.2.1",
        "m": "GET",
        "p": "/",
        "u": None,
        "s": 200,
        "b": 10,
        "ua": "",
        "r": "",
        "l": "",
    }
    key = settings.REQUEST_LOG_BUFFER_KEY
    # The flusher died after inserting its batch but before dropping the processing list.
    requestlog._insert([json.dumps(line)])
    empty_buffer.rpush(key + ":processing", json.dumps(line))
    empty_buffer.rpush(key, json.dumps({**line, "id": "0" * 31 + "2"}), "not json")
    requestlog.request_log_flush()
    assert RequestLog.objects.count() == 2
    assert empty_buffer.llen(key) == 0 and empty_buffer.llen(key + ":processing") == 0


def test_daily_statistics_survive_the_purge_LOG_3() -> None:
    day = (timezone.now() - timedelta(days=40)).date()
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)
    for path, status in [("/accounts/login/", 200), ("/accounts/login/", 400), ("/", 200)]:
        RequestLog.objects.create(
            request_id=__import__("uuid").uuid4(),
            time=at,
            method="GET",
            path=path,
            status=status,
            bytes_sent=100,
            browser="Firefox",
            ip_address="203.0.113.1",
            user_id=None,
        )
    assert requestlog.usage_aggregate_pending() == 1
    retention_run_all(force=True)
    assert RequestLog.objects.count() == 0
    stats = {(u.path_group, u.status_class): u.requests for u in DailyUsage.objects.filter(day=day)}
    assert stats == {("accounts", "2xx"): 1, ("accounts", "4xx"): 1, ("home", "2xx"): 1}
    field_names = {f.name for f in DailyUsage._meta.get_fields()}
    assert not {"ip_address", "user", "user_id", "path"} & field_names


def test_incident_window_export_is_csv_and_audited_LOG_4(privacy_officer) -> None:
    import uuid

    base = timezone.now() - timedelta(days=2)
    for minutes, ip, path in [
        (0, "203.0.113.9", "/a"),
        (30, "203.0.113.9", "/"),
        (90, "198.51.100.1", "/"),
        (600, "203.0.113.9", "/late"),
    ]:
        RequestLog.objects.create(
            request_id=uuid.uuid4(),
            time=base + timedelta(minutes=minutes),
            ip_address=ip,
            method="GET",
            path=path,
            status=200,
            language='=HYPERLINK("http://evil")',
        )
    c = login_client(privacy_officer, verified=True)
    response = c.post(
        "/admin/accounts/requestlog/export/",
        {
            "start": (base - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"),
            "end": (base + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            "ip_address": "203.0.113.9",
            "reason": "Credential-stuffing attack, police ref 42",
        },
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["time", "ip_address", "method"]
    assert len(rows) == 3  # header + the two lines of that address in the window
    assert rows[1][10].startswith("'=HYPERLINK")  # no formula reaches a spreadsheet
    event = AuditEvent.objects.get(action=AuditAction.REQUEST_LOG_EXPORT)
    assert event.actor == privacy_officer and event.detail["rows"] == 2
    assert "police ref 42" in event.detail["reason"]


def test_export_handed_to_an_authority_is_recorded_as_a_disclosure_LOG_4_DSR_5(
    privacy_officer, customer, other_customer
) -> None:
    import uuid

    from consent.models import Disclosure, ProcessingPurpose, Recipient
    from consent.services.register import disclosures_for_subject

    police = Recipient.objects.create(
        name="National Cyber Crime Unit",
        address="Harcourt Square, Dublin 2",
        role="authority",
        service="Investigates attacks",
        country="IE",
    )
    base = timezone.now() - timedelta(days=1)
    for minutes, ip, user in [
        (0, "203.0.113.9", customer),
        (5, "203.0.113.9", customer),
        (10, "203.0.113.9", None),
        (20, "198.51.100.1", other_customer),  # another address: not in the export
        (300, "203.0.113.9", other_customer),  # outside the window
    ]:
        RequestLog.objects.create(
            request_id=uuid.uuid4(),
            time=base + timedelta(minutes=minutes),
            ip_address=ip,
            method="GET",
            path="/",
            status=200,
            user_id=user.pk if user else None,
        )
    c = login_client(privacy_officer, verified=True)
    form = {
        "start": (base - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"),
        "end": (base + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "ip_address": "203.0.113.9",
        "reason": "Attack on the login form, police ref 7",
    }
    # A recipient needs a purpose (and the other way round): nothing is exported.
    bad = c.post("/admin/accounts/requestlog/export/", {**form, "recipient": police.pk})
    assert bad.status_code == 400 and b"Name the purpose" in bad.content
    assert not AuditEvent.objects.filter(action=AuditAction.REQUEST_LOG_EXPORT).exists()

    security = ProcessingPurpose.objects.get(key="security")
    response = c.post(
        "/admin/accounts/requestlog/export/",
        {**form, "recipient": police.pk, "purpose": security.pk},
    )
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 4  # header + three lines
    disclosure = Disclosure.objects.get()
    assert disclosure.recipient == police and disclosure.purpose == security
    assert sorted(disclosure.categories) == ["network", "usage"]
    assert disclosure.recorded_by == privacy_officer
    assert {s.user_id for s in disclosure.subjects.all()} == {customer.pk}
    assert "203.0.113.9" in disclosure.subjects_description
    assert "police ref 7" in disclosure.description
    assert list(disclosures_for_subject(user=customer)) == [disclosure]
    assert not disclosures_for_subject(user=other_customer).exists()
    audit = AuditEvent.objects.get(action=AuditAction.REQUEST_LOG_EXPORT)
    assert audit.detail["recipient"] == police.name
    assert AuditEvent.objects.filter(action=AuditAction.DISCLOSURE_RECORDED).count() == 1

    # Without a recipient, an export for the team's own analysis records no disclosure.
    c.post("/admin/accounts/requestlog/export/", form)
    assert Disclosure.objects.count() == 1


def test_export_needs_the_permission_and_a_valid_window(privacy_officer, support) -> None:
    assert (
        login_client(support, verified=True).get("/admin/accounts/requestlog/export/").status_code
        == 403
    )
    c = login_client(privacy_officer, verified=True)
    bad = c.post(
        "/admin/accounts/requestlog/export/",
        {"start": "2026-01-02T00:00", "end": "2026-01-01T00:00", "reason": "x"},
    )
    assert bad.status_code == 400
    assert b"The end must be after the start" in bad.content
    assert not AuditEvent.objects.filter(action=AuditAction.REQUEST_LOG_EXPORT).exists()


def test_lines_are_pushed_in_batches_and_nothing_waits_for_long(
    client, settings, empty_buffer
) -> None:
    """Batching on the hot path: full batches go at once, a partial one within seconds."""
    import time

    # The first render compiles templates; on a busy machine it could outlast the timer.
    client.get("/privacy/")
    empty_buffer.delete(settings.REQUEST_LOG_BUFFER_KEY)
    settings.REQUEST_LOG_BATCH_SIZE = 3
    settings.REQUEST_LOG_BATCH_SECONDS = 0.2
    key = settings.REQUEST_LOG_BUFFER_KEY
    for _ in range(4):
        client.get("/privacy/")
    assert empty_buffer.llen(key) == 3  # one full batch pushed, one line waiting
    deadline = time.monotonic() + 5
    while empty_buffer.llen(key) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert empty_buffer.llen(key) == 4  # the timer pushed the partial batch
    assert requestlog.request_log_flush() == 4
