"""The privacy-request pages (DSR-1, DSR-3): my requests, one request, the public form and
its code page, the emailed link, "Close my account". Bad input answers 4xx with a message,
never 500; another subject's ticket is not found; forms carry CSRF tokens; no inline script."""

from __future__ import annotations

import re
import uuid

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dsr.models import (
    ArchiveStatus,
    Channel,
    ExportArchive,
    RejectionReason,
    RequestType,
    Ticket,
    TicketStatus,
    VerificationChallenge,
)
from dsr.services.tickets import (
    ticket_create,
    ticket_extend,
    ticket_note,
    ticket_reject,
)
from tests.conftest import login_client
from tests.dsr.test_intake import code_email, link_token
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

REQUESTS = reverse("dsr:requests")
PUBLIC = reverse("dsr:public_request")
CLOSE = reverse("dsr:close_account")


@pytest.fixture(autouse=True)
def _own_throttles(settings) -> None:
    settings.CACHE_PREFIX = f"t-{uuid.uuid4().hex[:12]}"


def _no_inline_code(html: str) -> None:
    """Strict CSP: no inline script, handler or style anywhere on the page."""
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    assert re.search(r"\son[a-z]+=", html) is None
    assert "style=" not in html


def _account_ticket(user, committed, **kw) -> Ticket:
    kw.setdefault("type", RequestType.AUTOMATED)
    with committed():
        return ticket_create(
            channel=Channel.ACCOUNT, actor=user, user=user, identity_check="login", **kw
        ).ticket


# --- My requests ---------------------------------------------------------------------------
def test_requests_page_needs_login():
    response = Client().get(REQUESTS)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_requests_page_lists_only_my_tickets_DSR_1(
    customer, other_customer, customer_client, committed
):
    mine = _account_ticket(customer, committed)
    theirs = _account_ticket(other_customer, committed)
    response = customer_client.get(REQUESTS)
    html = response.content.decode()
    assert response.status_code == 200
    assert mine.reference in html and theirs.reference not in html
    assert "csrfmiddlewaretoken" in html
    assert reverse("consent:mine") in html and reverse("accounts:profile") in html
    _no_inline_code(html)


def test_requests_page_queries_do_not_grow_with_tickets(customer, customer_client, committed):
    _account_ticket(customer, committed, type=RequestType.AUTOMATED)
    with CaptureQueriesContext(connection) as one:
        customer_client.get(REQUESTS)
    for kind in (RequestType.RESTRICTION, RequestType.WITHDRAW_CONSENT, RequestType.OBJECTION):
        _account_ticket(customer, committed, type=kind, details="Why.")
    with CaptureQueriesContext(connection) as four:
        assert customer_client.get(REQUESTS).content.count(b"DSR-") >= 4
    assert len(four) == len(one)


def test_request_from_the_page_DSR_1(customer, customer_client, committed):
    with committed():
        response = customer_client.post(
            REQUESTS, {"type": "rectification", "details": "My surname is misspelt."}
        )
    ticket = Ticket.objects.get(user=customer)
    assert response.status_code == 302
    assert response["Location"] == reverse("dsr:ticket", args=[ticket.reference])
    assert ticket.type == RequestType.RECTIFICATION and ticket.jurisdiction == "gdpr"
    page = customer_client.get(response["Location"]).content.decode()
    assert "was received" in page


def test_ccpa_box_sets_the_jurisdiction(customer, customer_client, committed):
    with committed():
        customer_client.post(REQUESTS, {"type": "automated", "ccpa": "on"})
    assert Ticket.objects.get(user=customer).jurisdiction == "ccpa"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "This field is required"),
        ({"type": "everything"}, "Select a valid choice"),
        ({"type": "rectification"}, "Say which data is wrong"),
        ({"type": "objection", "details": ""}, "Say which processing"),
        ({"type": "automated", "details": "x" * 5001}, "at most 5000"),
    ],
)
def test_bad_request_input_is_a_400_with_a_message(customer_client, data, message):
    response = customer_client.post(REQUESTS, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Ticket.objects.exists()


def test_refused_request_is_a_400_with_its_reason(customer, customer_client, committed):
    _account_ticket(customer, committed, type=RequestType.ACCESS)
    Ticket.objects.update(status=TicketStatus.FULFILLED)
    response = customer_client.post(REQUESTS, {"type": "access"})
    assert response.status_code == 400
    assert "less than 24 hours ago" in response.content.decode()
    assert Ticket.objects.count() == 1


def test_csrf_is_enforced_on_the_request_form(customer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    assert client.post(REQUESTS, {"type": "automated"}).status_code == 403
    assert Client(enforce_csrf_checks=True).post(PUBLIC, {}).status_code == 403
    assert not Ticket.objects.exists()


# --- One request -------------------------------------------------------------------------------
def test_another_subjects_ticket_is_not_found_DSR_1(other_customer, customer_client, committed):
    theirs = _account_ticket(other_customer, committed)
    assert customer_client.get(reverse("dsr:ticket", args=[theirs.reference])).status_code == 404
    assert customer_client.get(reverse("dsr:ticket", args=["DSR-NOPE0000"])).status_code == 404
    assert Client().get(reverse("dsr:ticket", args=[theirs.reference])).status_code == 302


def test_ticket_page_shows_status_due_date_extension_and_history_DSR_1(
    customer, customer_client, committed, privacy_officer
):
    ticket = _account_ticket(customer, committed)
    with committed():
        ticket_note(ticket=ticket, actor=privacy_officer, note="Internal: checked with legal.")
        ticket_extend(ticket=ticket, actor=privacy_officer, reason="Many systems to search.")
    ticket.refresh_from_db()
    response = customer_client.get(reverse("dsr:ticket", args=[ticket.reference]))
    html = response.content.decode()
    assert response.status_code == 200
    assert ticket.get_status_display() in html
    assert ticket.extended_due is not None
    assert f"{ticket.extended_due:%-d %b %Y}" in html and "Many systems to search." in html
    assert "Deadline extended" in html and "Request received" in html
    # No staff notes, no staff names.
    assert "Internal" not in html and privacy_officer.email not in html
    assert privacy_officer.full_name not in html
    _no_inline_code(html)


def test_ticket_page_shows_the_rejection_reason(customer, customer_client, committed):
    ticket = _account_ticket(customer, committed, type=RequestType.OBJECTION, details="x")
    with committed():
        ticket_reject(
            ticket=ticket, actor=None, reason=RejectionReason.OTHER, text="We never did that."
        )
    html = customer_client.get(reverse("dsr:ticket", args=[ticket.reference])).content.decode()
    assert "Why we could not fulfil it" in html and "We never did that." in html


def test_no_download_link_until_the_archive_is_ready(customer, customer_client, committed):
    ticket = _account_ticket(customer, committed)
    ExportArchive.objects.create(ticket=ticket, status=ArchiveStatus.BUILDING)
    html = customer_client.get(reverse("dsr:ticket", args=[ticket.reference])).content.decode()
    assert 'id="download"' not in html


def test_ready_archive_shows_the_download_link_DSR_1(
    customer, customer_client, committed, settings
):
    from django.utils import timezone

    from dsr.services.export import export_download_url

    ticket = _account_ticket(customer, committed)
    now = timezone.now()
    ExportArchive.objects.create(
        ticket=ticket,
        status=ArchiveStatus.READY,
        file="dsr/exports/x.zip",
        ready_at=now,
        expires_at=now + timezone.timedelta(days=7),
    )
    ticket.refresh_from_db()
    html = customer_client.get(reverse("dsr:ticket", args=[ticket.reference])).content.decode()
    assert 'id="download"' in html
    url = export_download_url(ticket=ticket)
    path = url.removeprefix(settings.SITE_URL)
    assert path.startswith("/privacy/requests/download/")
    assert f'href="{path.split(":")[0]}' in html  # site-relative, same archive


# --- Public form ---------------------------------------------------------------------------
def test_public_flow_code_page_and_verification_DSR_1(client, committed):
    mail.outbox.clear()
    response = client.get(PUBLIC)
    assert response.status_code == 200 and "csrfmiddlewaretoken" in response.content.decode()
    _no_inline_code(response.content.decode())
    with committed():
        response = client.post(PUBLIC, {"email": "guest@example.com", "type": "automated"})
    assert response.status_code == 302
    verify_url = response["Location"]
    page = client.get(verify_url).content.decode()
    assert "We sent a 6-digit code" in page and "Send a new code" in page
    _no_inline_code(page)
    code, _ = code_email("guest@example.com")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    response = client.post(verify_url, {"action": "verify", "code": wrong})
    assert response.status_code == 400 and "not right" in response.content.decode()
    response = client.post(verify_url, {"action": "verify", "code": "abc"})
    assert response.status_code == 400 and "6-digit code" in response.content.decode()
    with committed():
        response = client.post(verify_url, {"action": "verify", "code": code})
    assert response.status_code == 200 and "email address is confirmed" in response.content.decode()
    ticket = Ticket.objects.get()
    assert ticket.verified_at is not None
    # Coming back shows the request, not the code form.
    assert "email address is confirmed" in client.get(verify_url).content.decode()


def test_locked_code_is_a_403(client, committed, settings):
    settings.DSR_CODE_MAX_TRIES = 2
    mail.outbox.clear()
    with committed():
        verify_url = client.post(PUBLIC, {"email": "g@example.com", "type": "automated"})[
            "Location"
        ]
    code, _ = code_email("g@example.com")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert client.post(verify_url, {"action": "verify", "code": wrong}).status_code == 400
    response = client.post(verify_url, {"action": "verify", "code": wrong})
    assert response.status_code == 403 and "locked" in response.content.decode()
    response = client.post(verify_url, {"action": "verify", "code": code})
    assert response.status_code == 403
    assert Ticket.objects.get().status == TicketStatus.AWAITING_VERIFICATION


def test_send_a_new_code_button(client, committed, settings):
    mail.outbox.clear()
    with committed():
        verify_url = client.post(PUBLIC, {"email": "g@example.com", "type": "automated"})[
            "Location"
        ]
    response = client.post(verify_url, {"action": "resend"})
    assert response.status_code == 429 and "Wait a minute" in response.content.decode()
    settings.CACHE_PREFIX += "-later"
    with committed():
        response = client.post(verify_url, {"action": "resend"}, follow=True)
    assert response.status_code == 200 and "We sent a new code" in response.content.decode()
    assert VerificationChallenge.objects.count() == 2


@pytest.mark.parametrize(
    ("data", "message", "status"),
    [
        ({"email": "nope", "type": "automated"}, "valid email", 400),
        ({"email": "g@example.com"}, "This field is required", 400),
        ({"email": "g@example.com", "type": "rectification"}, "Say which data", 400),
    ],
)
def test_bad_public_input_is_a_4xx_with_a_message(client, data, message, status):
    response = client.post(PUBLIC, data)
    assert response.status_code == status and message in response.content.decode()
    assert not Ticket.objects.exists()


def test_public_throttle_is_a_429(client, committed, settings):
    settings.DSR_PUBLIC_PER_IP_HOUR = 1
    with committed():
        client.post(PUBLIC, {"email": "a@example.com", "type": "automated"})
    response = client.post(PUBLIC, {"email": "b@example.com", "type": "automated"})
    assert response.status_code == 429 and "Too many requests" in response.content.decode()


def test_forged_verify_page_is_a_400(client):
    for token in ("DSR-AAAAAAAA:forged", "x"):
        response = client.get(reverse("dsr:public_verify", args=[token]))
        assert response.status_code == 400 and "not valid" in response.content.decode()
        response = client.post(reverse("dsr:public_verify", args=[token]), {"code": "123456"})
        assert response.status_code == 400


def test_emailed_link_get_confirms_only_on_post_DSR_1(client, committed):
    mail.outbox.clear()
    with committed():
        client.post(PUBLIC, {"email": "g@example.com", "type": "automated"})
    _, link = code_email("g@example.com")
    url = reverse("dsr:public_verify_link", args=[link_token(link)])
    response = client.get(url)
    assert response.status_code == 200 and "Yes, I made this request" in response.content.decode()
    assert Ticket.objects.get().status == TicketStatus.AWAITING_VERIFICATION  # a GET does nothing
    with committed():
        response = client.post(url)
    assert response.status_code == 200 and "email address is confirmed" in response.content.decode()
    assert Ticket.objects.get().identity_check == "email_link"
    response = client.post(url)
    assert response.status_code == 400 and "no longer be used" in response.content.decode()


def test_forged_link_is_a_400(client):
    url = reverse("dsr:public_verify_link", args=["1.1:forged"])
    assert client.get(url).status_code == 400
    assert client.post(url).status_code == 400


def test_verify_page_does_not_reveal_an_earlier_verified_request(client, committed, settings):
    """Someone typing another person's address never sees that person's verified request."""
    mail.outbox.clear()
    with committed():
        url = client.post(PUBLIC, {"email": "g@example.com", "type": "automated"})["Location"]
    code, _ = code_email("g@example.com")
    with committed():
        client.post(url, {"action": "verify", "code": code})
    settings.CACHE_PREFIX += "-later"
    stranger = Client()
    with committed():
        second = stranger.post(PUBLIC, {"email": "g@example.com", "type": "automated"})
    page = stranger.get(second["Location"]).content.decode()
    assert "We sent a 6-digit code" in page and "confirmed" not in page


# --- Close my account ----------------------------------------------------------------------
def test_close_account_page_explains_and_asks_for_the_password_DSR_3(customer_client):
    response = customer_client.get(CLOSE)
    html = response.content.decode()
    assert response.status_code == 200
    assert "invoices are kept" in html and "can no longer log in" in html
    assert 'type="password"' in html and "csrfmiddlewaretoken" in html
    _no_inline_code(html)


def test_close_account_wrong_password_is_a_400(customer_client):
    response = customer_client.post(CLOSE, {"password": "wrong"})
    assert response.status_code == 400 and "password is not right" in response.content.decode()
    response = customer_client.post(CLOSE, {})
    assert response.status_code == 400
    assert not Ticket.objects.exists()


def test_close_account_opens_an_erasure_and_logs_out_DSR_3(customer, customer_client, committed):
    with committed():
        response = customer_client.post(CLOSE, {"password": PASSWORD})
    assert response.status_code == 200
    ticket = Ticket.objects.get(user=customer)
    assert ticket.type == RequestType.ERASURE and ticket.reference in response.content.decode()
    assert customer_client.get(REQUESTS).status_code == 302  # logged out


def test_close_account_with_a_wait_stays_logged_in_DSR_3(
    customer, customer_client, committed, settings
):
    settings.DSR_CLOSE_ACCOUNT_WAIT_DAYS = 14
    with committed():
        response = customer_client.post(CLOSE, {"password": PASSWORD})
    assert response.status_code == 200 and "It runs after" in response.content.decode()
    assert customer_client.get(REQUESTS).status_code == 200
    assert Ticket.objects.get(user=customer).not_before is not None


def test_staff_get_no_close_button(support):
    client = login_client(support, verified=True)
    html = client.get(CLOSE).content.decode()
    assert "staff account" in html and 'id="close-form"' not in html
    assert client.post(CLOSE, {"password": PASSWORD}).status_code == 400


def test_profile_and_privacy_pages_link_to_the_request_pages(customer_client):
    profile = customer_client.get(reverse("accounts:profile")).content.decode()
    assert REQUESTS in profile and CLOSE in profile
    policy = Client().get(reverse("privacy")).content.decode()
    assert PUBLIC in policy and REQUESTS in policy
