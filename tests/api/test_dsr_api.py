"""The privacy-requests API (DSR-1, DSR-2): the web's own services and rules, scoped to
the subject, with the public form's code verification and strict throttles."""

from __future__ import annotations

import hashlib
import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import AuditAction, AuditEvent, User
from dsr.models import (
    ArchiveStatus,
    Channel,
    ExportArchive,
    RequestType,
    Ticket,
    TicketEventKind,
    TicketStatus,
)
from dsr.services.intake import dsr_request_from_account
from dsr.services.tickets import ticket_extend, ticket_note
from tests.api.conftest import api_client
from tests.conftest import login_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("api:privacy-requests")
PUBLIC = reverse("api:privacy-requests-public")
_ips = itertools.count(1)


@pytest.fixture(autouse=True)
def _own_service_throttles(settings: Any) -> None:
    """The services' own limits (per address, per network) count in the shared Redis:
    each test gets its own key space."""
    settings.CACHE_PREFIX = f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def committed(
    django_capture_on_commit_callbacks: Any,
) -> Callable[[], AbstractContextManager[Any]]:
    """``with committed():`` runs the on-commit work (emails, the export task) at its end."""

    def make() -> AbstractContextManager[Any]:
        return django_capture_on_commit_callbacks(execute=True)

    return make


def anon(ip: str | None = None) -> APIClient:
    """An anonymous client from its own address (throttles count per address)."""
    return APIClient(REMOTE_ADDR=ip or f"198.18.{uuid.uuid4().int % 250}.{next(_ips) % 250 + 1}")


def detail_url(reference: str) -> str:
    return reverse("api:privacy-requests-detail", args=[reference])


def export_url(reference: str) -> str:
    return reverse("api:privacy-requests-export", args=[reference])


def verify_url(token: str) -> str:
    return reverse("api:privacy-requests-public-verify", args=[token])


def resend_url(token: str) -> str:
    return reverse("api:privacy-requests-public-resend", args=[token])


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return dict(body["error"])


def code_from_email(to: str) -> str:
    for message in reversed(mail.outbox):
        if to in message.to and "confirm your privacy request" in message.subject:
            found = re.search(r"^\s+(\d{6})\s*$", message.body, re.M)
            assert found, message.body
            return found.group(1)
    raise AssertionError(f"no code email to {to}")


def _clear_throttle(scope: str, ident: str) -> None:
    # Throttle counters outlive a test database (shared Redis): start from zero.
    cache.delete(f"throttle_{scope}_{ident}")


# --- POST /privacy/requests/ -------------------------------------------------------------------
def test_create_request_through_the_api_DSR_1(customer: User, customer_api: APIClient) -> None:
    response = customer_api.post(LIST, {"type": "automated"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["merged"] is False
    ticket = Ticket.objects.get(reference=body["request"]["reference"])
    assert ticket.user == customer and ticket.channel == Channel.API
    assert ticket.status != TicketStatus.AWAITING_VERIFICATION  # identified by the login
    assert body["request"]["due_on"] == ticket.due_on.isoformat()
    assert body["request"]["type"] == "automated" and body["request"]["jurisdiction"] == "gdpr"
    assert ticket.reference in body["message"]


def test_duplicate_is_merged_and_answers_200_DSR_1(customer_api: APIClient) -> None:
    first = customer_api.post(
        LIST, {"type": "rectification", "details": "My city is wrong."}, format="json"
    )
    second = customer_api.post(
        LIST, {"type": "rectification", "details": "And my postcode."}, format="json"
    )
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["merged"] is True
    assert second.json()["request"]["reference"] == first.json()["request"]["reference"]
    assert "already have an open request" in second.json()["message"]
    ticket = Ticket.objects.get(reference=first.json()["request"]["reference"])
    assert ticket.merged_count == 1 and "postcode" in ticket.details


def test_ccpa_and_shine_the_light_set_the_clock_DSR_2(customer_api: APIClient) -> None:
    ccpa = customer_api.post(LIST, {"type": "automated", "ccpa": True}, format="json").json()
    assert ccpa["request"]["jurisdiction"] == "ccpa"
    stl = customer_api.post(LIST, {"type": "shine_the_light"}, format="json").json()
    assert stl["request"]["jurisdiction"] == "ccpa"  # California law whatever was ticked


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "type"),
        ({"type": "nonsense"}, "type"),
        ({"type": "rectification"}, "details"),  # the form's rule: say what is wrong
        ({"type": "objection", "details": ""}, "details"),
        ({"type": "access", "details": "x" * 5001}, "details"),
        ({"type": ["access"]}, "type"),
        ({"type": "access", "ccpa": "perhaps"}, "ccpa"),
    ],
)
def test_bad_input_is_400_with_fields(
    customer_api: APIClient, payload: dict[str, Any], field: str
) -> None:
    error = assert_error(customer_api.post(LIST, payload, format="json"), 400, "invalid")
    assert field in error["fields"]
    assert not Ticket.objects.exists()


def test_objection_to_direct_marketing_needs_no_reason(customer_api: APIClient) -> None:
    response = customer_api.post(
        LIST, {"type": "objection", "direct_marketing": True}, format="json"
    )
    assert response.status_code == 201
    ticket = Ticket.objects.get()
    assert ticket.direct_marketing is True


def test_malformed_body_is_400_not_500(customer_api: APIClient) -> None:
    response = customer_api.post(LIST, "{not json", content_type="application/json")
    assert_error(response, 400, "malformed_request")


def test_second_export_within_24_hours_is_409_with_the_service_message(
    customer_api: APIClient, committed: Any
) -> None:
    with committed():
        assert customer_api.post(LIST, {"type": "access"}, format="json").status_code == 201
    error = assert_error(
        customer_api.post(LIST, {"type": "portability"}, format="json"), 409, "refused"
    )
    assert "less than 24 hours" in error["message"]


def test_staff_erasure_is_refused_409(support: User) -> None:
    error = assert_error(
        api_client(support).post(LIST, {"type": "erasure"}, format="json"), 409, "refused"
    )
    assert "staff account" in error["message"]


def test_anonymous_is_401(anon_api: APIClient) -> None:
    assert_error(anon_api.get(LIST), 401, "not_authenticated")
    assert_error(anon_api.post(LIST, {"type": "access"}, format="json"), 401, "not_authenticated")
    assert_error(anon_api.get(detail_url("DSR-AAAAAAAA")), 401, "not_authenticated")
    assert_error(anon_api.get(export_url("DSR-AAAAAAAA")), 401, "not_authenticated")


def test_session_post_without_csrf_is_403(customer: User) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(customer)
    assert_error(client.post(LIST, {"type": "automated"}, format="json"), 403, "forbidden")


def test_creation_is_throttled_429_with_retry_after(settings: Any) -> None:
    user = UserFactory()
    _clear_throttle("dsr", f"user:{user.pk}")
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "dsr": "2/hour",
        },
    }
    client = api_client(user)
    assert client.post(LIST, {"type": "automated"}, format="json").status_code == 201
    assert client.post(LIST, {"type": "automated"}, format="json").status_code == 200
    response = client.post(LIST, {"type": "automated"}, format="json")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert client.get(LIST).status_code == 200  # reading is not a request made


# --- GET /privacy/requests/ and /{reference}/ --------------------------------------------------
# Kinds a subject can hold open side by side (one export per 24 h; erasure closes the account).
KINDS = [k for k in RequestType.values if k not in (RequestType.ERASURE, RequestType.PORTABILITY)]


def _make(user: User, kinds: list[str]) -> list[Ticket]:
    out = []
    for kind in kinds:
        details = "Because." if kind in (RequestType.RECTIFICATION, RequestType.OBJECTION) else ""
        out.append(dsr_request_from_account(user=user, type=kind, details=details).ticket)
    return out


def test_list_is_mine_newest_first_with_a_cursor(
    customer: User, other_customer: User, customer_api: APIClient
) -> None:
    mine = _make(customer, KINDS[:3])
    _make(other_customer, KINDS[:2])
    page = customer_api.get(LIST, {"page_size": 2}).json()
    assert [r["reference"] for r in page["results"]] == [t.reference for t in mine[::-1][:2]]
    assert page["next"] and page["previous"] is None
    rest = customer_api.get(page["next"]).json()
    assert [r["reference"] for r in rest["results"]] == [mine[0].reference]
    assert rest["next"] is None


def test_list_queries_do_not_grow_with_the_number_of_requests(
    customer: User,
    customer_api: APIClient,
    django_assert_num_queries: Any,
    django_assert_max_num_queries: Any,
) -> None:
    _make(customer, KINDS[:1])
    customer_api.get(LIST)  # warm: the token's first use may write its last-used time
    with django_assert_max_num_queries(50) as one:
        assert len(customer_api.get(LIST).json()["results"]) == 1
    _make(customer, KINDS[1:])
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(customer_api.get(LIST).json()["results"]) == len(KINDS)


def test_detail_shows_the_clock_extension_and_subject_history_only_DSR_2(
    customer: User, customer_api: APIClient, privacy_officer: User
) -> None:
    ticket = dsr_request_from_account(
        user=customer, type=RequestType.RECTIFICATION, details="My city is wrong."
    ).ticket
    ticket_note(ticket=ticket, actor=privacy_officer, note="STAFF-ONLY: checked the CRM.")
    ticket = ticket_extend(ticket=ticket, actor=privacy_officer, reason="Many systems to check.")
    response = customer_api.get(detail_url(ticket.reference))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == ticket.status and body["type"] == "rectification"
    assert body["first_due"] == ticket.first_due.isoformat()
    assert body["extended_due"] == ticket.extended_due.isoformat() == body["due_on"]
    assert body["extension_reason"] == "Many systems to check."
    assert isinstance(body["days_left"], int)
    assert body["details"] == "My city is wrong."
    kinds = [row["kind"] for row in body["history"]]
    assert kinds[0] == TicketEventKind.CREATED and TicketEventKind.EXTENDED in kinds
    assert TicketEventKind.NOTE not in kinds
    assert "STAFF-ONLY" not in response.content.decode()
    assert privacy_officer.email not in response.content.decode()
    transitions = [r for r in body["history"] if r["kind"] == TicketEventKind.TRANSITION]
    assert transitions and all(r["summary"].startswith("Status: ") for r in transitions)


def test_another_customers_request_is_404(customer: User, other_api: APIClient) -> None:
    ticket = dsr_request_from_account(user=customer, type=RequestType.AUTOMATED).ticket
    assert_error(other_api.get(detail_url(ticket.reference)), 404, "not_found")
    assert_error(other_api.get(export_url(ticket.reference)), 404, "not_found")
    assert_error(other_api.get(detail_url("nonsense")), 404, "not_found")


# --- GET /privacy/requests/{reference}/export/ ---------------------------------------------
@pytest.fixture
def export_ticket(customer_api: APIClient, committed: Any) -> Ticket:
    with committed():
        response = customer_api.post(LIST, {"type": "access"}, format="json")
    ticket = Ticket.objects.get(reference=response.json()["request"]["reference"])
    assert ticket.archive.status == ArchiveStatus.READY
    return ticket


def test_export_link_downloads_the_archive_and_is_audited_DSR_1(
    export_ticket: Ticket, customer: User, customer_api: APIClient
) -> None:
    response = customer_api.get(export_url(export_ticket.reference))
    assert response.status_code == 200, response.content
    body = response.json()
    archive = export_ticket.archive
    assert body["size"] == archive.size and body["sha256"] == archive.sha256
    assert body["expires_at"] and body["download_expires_at"]
    # The short-lived link works for any HTTP client: no session, no token.
    direct = Client().get(urlsplit(body["download_url"]).path)
    assert direct.status_code == 200
    assert direct["Content-Type"] == "application/zip"
    data = b"".join(direct.streaming_content)
    assert data.startswith(b"PK") and hashlib.sha256(data).hexdigest() == archive.sha256
    audit = AuditEvent.objects.get(action=AuditAction.DSR_EXPORT_DOWNLOADED)
    assert audit.actor == customer and audit.detail["ticket"] == export_ticket.reference
    assert export_ticket.events.filter(kind=TicketEventKind.DOWNLOAD).count() == 1
    # The same link the web and the email give: it works for the signed-in subject.
    path = urlsplit(body["url"]).path
    assert path.startswith("/privacy/requests/download/")
    browser: Client = login_client(customer)
    download = browser.get(path + "?get=1")
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"PK")
    assert export_ticket.events.filter(kind=TicketEventKind.DOWNLOAD).count() == 2
    # Not anyone else's link, though.
    assert login_client(UserFactory()).get(path + "?get=1").status_code == 404


def test_export_not_ready_is_409(customer: User, customer_api: APIClient) -> None:
    # Without the commit the export task never ran: the archive waits.
    ticket = dsr_request_from_account(user=customer, type=RequestType.ACCESS).ticket
    error = assert_error(customer_api.get(export_url(ticket.reference)), 409, "not_ready")
    assert "not ready" in error["message"]


def test_expired_export_is_409_expired(export_ticket: Ticket, customer_api: APIClient) -> None:
    ExportArchive.objects.filter(ticket=export_ticket).update(status=ArchiveStatus.EXPIRED)
    assert_error(customer_api.get(export_url(export_ticket.reference)), 409, "expired")


def test_export_of_a_non_export_request_is_404(customer: User, customer_api: APIClient) -> None:
    ticket = dsr_request_from_account(user=customer, type=RequestType.AUTOMATED).ticket
    assert_error(customer_api.get(export_url(ticket.reference)), 404, "not_found")


# --- Public requests -------------------------------------------------------------------------
def _public(committed: Any, client: APIClient | None = None, **data: Any) -> Any:
    payload = {"email": "guest@example.com", "type": "automated", **data}
    with committed():
        return (client or anon()).post(PUBLIC, payload, format="json")


def test_public_request_is_verified_with_the_emailed_code_DSR_1(committed: Any) -> None:
    mail.outbox.clear()
    response = _public(committed)
    assert response.status_code == 202, response.content
    token = response.json()["token"]
    ticket = Ticket.objects.get()
    assert ticket.status == TicketStatus.AWAITING_VERIFICATION
    assert ticket.channel == Channel.PUBLIC_FORM and ticket.user is None
    code = code_from_email("guest@example.com")
    with committed():
        verified = anon().post(verify_url(token), {"code": code}, format="json")
    assert verified.status_code == 200, verified.content
    ticket.refresh_from_db()
    assert ticket.verified_at is not None
    assert verified.json()["reference"] == ticket.reference
    assert verified.json()["status"] == ticket.status != TicketStatus.AWAITING_VERIFICATION
    # Once confirmed, asking again just shows the confirmed request.
    again = anon().post(verify_url(token), {"code": "000000"}, format="json")
    assert again.status_code == 200
    assert_error(anon().post(resend_url(token)), 409, "already_verified")


def test_public_answer_does_not_reveal_an_account_DSR_1(committed: Any, customer: User) -> None:
    with_account = _public(committed, email=customer.email)
    without = _public(committed, email="nobody@example.com")
    assert with_account.status_code == without.status_code == 202
    assert with_account.json()["message"] == without.json()["message"]
    assert set(with_account.json()) == set(without.json()) == {"token", "message"}


def test_public_duplicate_or_refusal_is_not_told_on_the_answer_DSR_1(
    committed: Any, settings: Any
) -> None:
    first = _public(committed, type="access")
    settings.CACHE_PREFIX += "-later"  # a minute later: the per-address limit has passed
    second = _public(committed, type="access")
    assert first.status_code == second.status_code == 202
    assert first.json()["message"] == second.json()["message"]


def test_wrong_code_is_400_with_tries_left_then_locked_409(committed: Any, settings: Any) -> None:
    settings.DSR_CODE_MAX_TRIES = 2
    mail.outbox.clear()
    token = _public(committed).json()["token"]
    good = code_from_email("guest@example.com")
    wrong = "000000" if good != "000000" else "111111"
    client = anon()
    error = assert_error(client.post(verify_url(token), {"code": wrong}), 400, "wrong_code")
    assert "1 more try" in error["message"]
    error = assert_error(client.post(verify_url(token), {"code": wrong}), 409, "code_locked")
    assert "locked" in error["message"]
    # Even the right code no longer works: a new one is needed.
    assert_error(client.post(verify_url(token), {"code": good}), 409, "code_locked")
    assert Ticket.objects.get().status == TicketStatus.AWAITING_VERIFICATION


def test_verify_input_and_token_errors(committed: Any) -> None:
    token = _public(committed).json()["token"]
    client = anon()
    assert_error(client.post(verify_url(token), {}, format="json"), 400, "invalid")
    assert_error(client.post(verify_url(token), {"code": "abc"}), 400, "wrong_code")
    assert_error(client.post(verify_url(token), {"code": "1" * 50}), 400, "invalid")
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert_error(client.post(verify_url(forged), {"code": "123456"}), 404, "not_found")
    assert_error(client.post(resend_url("garbage")), 404, "not_found")


def test_resend_replaces_the_code_and_is_limited_per_address(committed: Any, settings: Any) -> None:
    mail.outbox.clear()
    token = _public(committed).json()["token"]
    old = code_from_email("guest@example.com")
    limited = anon().post(resend_url(token))
    assert_error(limited, 429, "throttled")  # the service's one code per address a minute
    assert int(limited["Retry-After"]) > 0
    settings.CACHE_PREFIX += "-later"
    with committed():
        response = anon().post(resend_url(token))
    assert response.status_code == 202
    assert "new code" in response.json()["message"]
    new = code_from_email("guest@example.com")
    client = anon()
    if new != old:
        assert_error(client.post(verify_url(token), {"code": old}), 400, "wrong_code")
    with committed():
        assert client.post(verify_url(token), {"code": new}).status_code == 200


def test_public_bad_input_is_400(committed: Any) -> None:
    client = anon()
    error = assert_error(
        client.post(PUBLIC, {"email": "not-an-address", "type": "access"}, format="json"),
        400,
        "invalid",
    )
    assert "email" in error["fields"]
    error = assert_error(
        client.post(PUBLIC, {"email": "a@example.com", "type": "rectification"}, format="json"),
        400,
        "invalid",
    )
    assert "details" in error["fields"]
    assert not Ticket.objects.exists() and not mail.outbox


def test_public_creation_is_throttled_429_with_retry_after(settings: Any, committed: Any) -> None:
    ip = "198.51.100.77"
    _clear_throttle("dsr", f"ip:{ip}")
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "dsr": "1/hour",
        },
    }
    client = anon(ip)
    assert _public(committed, client, email="a@example.com").status_code == 202
    response = _public(committed, client, email="b@example.com")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert Ticket.objects.count() == 1


def test_verify_is_throttled_429_with_retry_after(settings: Any, committed: Any) -> None:
    token = _public(committed).json()["token"]
    ip = "198.51.100.78"
    _clear_throttle("verify", f"ip:{ip}")
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "verify": "2/min",
        },
    }
    client = anon(ip)
    for _ in range(2):
        assert client.post(verify_url(token), {"code": "abcdef"}).status_code == 400
    response = client.post(verify_url(token), {"code": "123456"})
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    # Refused before the code was looked at: no try was counted.
    assert not Ticket.objects.get().challenges.filter(attempts__gt=0).exists()


@pytest.fixture(autouse=True)
def _no_leftover_outbox() -> Iterator[None]:
    yield
    mail.outbox.clear()
