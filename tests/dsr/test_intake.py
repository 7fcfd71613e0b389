"""Intake from the account page and the public form, with email verification (DSR-1), and
"Close my account" as an erasure request (DSR-3)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import User
from dsr.models import (
    Channel,
    IdentityCheck,
    RejectionReason,
    RequestType,
    Ticket,
    TicketStatus,
    VerificationChallenge,
)
from dsr.services.challenges import ChallengeFailed
from dsr.services.intake import (
    IntakeThrottled,
    dsr_close_account,
    dsr_public_resend,
    dsr_public_verify,
    dsr_public_verify_link,
    dsr_request_from_account,
    dsr_request_public,
    public_ticket_from_token,
    tickets_expire_unverified,
)
from dsr.services.tickets import TicketRefused, ticket_create
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_throttles(settings) -> None:
    """Throttle counters live in the shared Redis: each test gets its own key space."""
    settings.CACHE_PREFIX = f"t-{uuid.uuid4().hex[:12]}"


def code_email(to: str) -> tuple[str, str]:
    """(code, link) from the newest code email to *to*."""
    for message in reversed(mail.outbox):
        if to in message.to and "confirm your privacy request" in message.subject:
            code = re.search(r"^\s+(\d{6})\s*$", message.body, re.M)
            link = re.search(r"https?://\S+/privacy/requests/public/link/\S+/", message.body)
            assert code and link, message.body
            return code.group(1), link.group(0)
    raise AssertionError(f"no code email to {to}")


def link_token(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[1]


def public(committed, email: str = "guest@example.com", ip: str = "192.0.2.1", **kw):
    kw.setdefault("type", RequestType.AUTOMATED)
    with committed():
        return dsr_request_public(email=email, ip_address=ip, **kw)


# --- Account page --------------------------------------------------------------------------
def test_account_request_is_identified_by_login_and_starts_DSR_1(customer, committed):
    with committed():
        intake = dsr_request_from_account(user=customer, type=RequestType.AUTOMATED)
    ticket = intake.ticket
    assert intake.created
    assert ticket.channel == Channel.ACCOUNT and ticket.user == customer
    assert ticket.identity_check == IdentityCheck.LOGIN and ticket.verified_at is not None
    assert ticket.status != TicketStatus.AWAITING_VERIFICATION
    assert not VerificationChallenge.objects.filter(ticket=ticket).exists()


def test_account_duplicate_is_merged_DSR_1(customer, committed):
    with committed():
        first = dsr_request_from_account(
            user=customer, type=RequestType.RECTIFICATION, details="My city is wrong."
        )
        second = dsr_request_from_account(
            user=customer, type=RequestType.RECTIFICATION, details="And my postcode."
        )
    assert not second.created and second.ticket.pk == first.ticket.pk
    assert "already have an open request" in second.message
    second.ticket.refresh_from_db()
    assert second.ticket.merged_count == 1 and "postcode" in second.ticket.details


@pytest.mark.parametrize("kind", [RequestType.RECTIFICATION, RequestType.OBJECTION])
def test_details_are_required_for_rectification_and_objection(customer, kind):
    with pytest.raises(TicketRefused, match="Say which"):
        dsr_request_from_account(user=customer, type=kind, details="  ")
    assert not Ticket.objects.exists()


def test_objection_to_direct_marketing_needs_no_reason(customer, committed):
    with committed():
        ticket = dsr_request_from_account(
            user=customer, type=RequestType.OBJECTION, direct_marketing=True
        ).ticket
    assert ticket.direct_marketing


def test_direct_marketing_flag_only_means_something_on_an_objection(customer, committed):
    with committed():
        ticket = dsr_request_from_account(
            user=customer, type=RequestType.AUTOMATED, direct_marketing=True
        ).ticket
    assert not ticket.direct_marketing


def test_bad_type_or_jurisdiction_is_refused(customer):
    with pytest.raises(TicketRefused, match="listed kinds"):
        dsr_request_from_account(user=customer, type="everything")
    with pytest.raises(TicketRefused, match="GDPR or CCPA"):
        dsr_request_from_account(user=customer, type=RequestType.ACCESS, jurisdiction="mars")


def test_closed_account_and_staff_erasure_are_refused(customer, support):
    customer.is_active = False
    customer.save()
    with pytest.raises(TicketRefused, match="closed"):
        dsr_request_from_account(user=customer, type=RequestType.AUTOMATED)
    with pytest.raises(TicketRefused, match="staff account"):
        dsr_request_from_account(user=support, type=RequestType.ERASURE)
    assert not Ticket.objects.exists()


# --- Public form ---------------------------------------------------------------------------
def test_public_request_waits_for_the_emailed_code_DSR_1(committed):
    mail.outbox.clear()
    intake, token = public(committed, email="Guest@Example.com ")
    ticket = intake.ticket
    assert ticket.status == TicketStatus.AWAITING_VERIFICATION
    assert ticket.channel == Channel.PUBLIC_FORM and ticket.email == "guest@example.com"
    assert ticket.user is None
    code, link = code_email("guest@example.com")
    assert str(ticket.pk) not in token.split(":")[0]  # the raw id is not in the address
    assert public_ticket_from_token(token).pk == ticket.pk
    assert link.startswith("http")
    challenge = VerificationChallenge.objects.get(ticket=ticket)
    assert code not in challenge.code_hash


def test_public_form_does_not_reveal_an_account_DSR_1(committed, customer):
    """The same answer, emails and state for an account's address as for any other."""
    mail.outbox.clear()
    with_account, _ = public(committed, email=customer.email, ip="192.0.2.1")
    sent_with = [m.subject.replace(with_account.ticket.reference, "REF") for m in mail.outbox]
    mail.outbox.clear()
    without, _ = public(committed, email="nobody@example.com", ip="192.0.2.2")
    sent_without = [m.subject.replace(without.ticket.reference, "REF") for m in mail.outbox]
    assert sent_with == sent_without
    assert with_account.message.replace(with_account.ticket.reference, "R") == (
        without.message.replace(without.ticket.reference, "R")
    )
    assert with_account.ticket.user is None and without.ticket.user is None
    assert with_account.ticket.status == without.ticket.status


def test_merged_public_duplicate_sends_a_fresh_code_DSR_1(committed, settings):
    mail.outbox.clear()
    first, token1 = public(committed, details="first")
    old_code, _ = code_email("guest@example.com")
    settings.CACHE_PREFIX += "-later"  # a minute later: the per-address throttle has passed
    second, token2 = public(committed, details="second")
    new_code, _ = code_email("guest@example.com")
    assert second.ticket.pk == first.ticket.pk and not second.created
    assert VerificationChallenge.objects.filter(ticket=first.ticket).count() == 2
    if old_code != new_code:
        with pytest.raises(ChallengeFailed):
            dsr_public_verify(token=token1, code=old_code)
    assert public_ticket_from_token(token2).pk == first.ticket.pk


def test_public_requests_are_throttled_per_address_and_per_ip_DSR_1(committed, settings):
    settings.DSR_PUBLIC_PER_IP_HOUR = 2
    public(committed, email="a@example.com", ip="198.51.100.7")
    with pytest.raises(IntakeThrottled, match="Wait a minute"):
        public(committed, email="a@example.com", ip="198.51.100.8")
    public(committed, email="b@example.com", ip="198.51.100.7")
    with pytest.raises(IntakeThrottled, match="network"):
        public(committed, email="c@example.com", ip="198.51.100.7")
    public(committed, email="c@example.com", ip="198.51.100.9")  # another network is fine
    assert Ticket.objects.count() == 3


def test_resend_replaces_the_code_and_is_throttled(committed, settings):
    mail.outbox.clear()
    _, token = public(committed)
    old_code, old_link = code_email("guest@example.com")
    with pytest.raises(IntakeThrottled):
        dsr_public_resend(token=token, ip_address="192.0.2.1")
    settings.CACHE_PREFIX += "-later"
    with committed():
        dsr_public_resend(token=token, ip_address="192.0.2.1")
    new_code, new_link = code_email("guest@example.com")
    assert new_link != old_link
    with pytest.raises(ChallengeFailed, match="no longer be used"):
        dsr_public_verify_link(token=link_token(old_link))
    if new_code != old_code:
        with pytest.raises(ChallengeFailed):
            dsr_public_verify(token=token, code=old_code)


def test_export_limit_is_told_by_email_not_on_the_page(committed, settings):
    """A refusal depending on the address's history goes to the address, not the page."""
    with committed():
        earlier = ticket_create(
            type=RequestType.ACCESS,
            channel=Channel.PUBLIC_FORM,
            actor=None,
            email="guest@example.com",
        ).ticket
        Ticket.objects.filter(pk=earlier.pk).update(status=TicketStatus.FULFILLED)
    mail.outbox.clear()
    intake, _token = public(committed, type=RequestType.ACCESS)
    assert intake.ticket.pk == earlier.pk and not intake.created
    assert Ticket.objects.count() == 1
    message = next(m for m in mail.outbox if "confirm your privacy request" in m.subject)
    assert "less than 24 hours ago" in message.body


def test_public_input_is_checked():
    with pytest.raises(TicketRefused, match="email address"):
        dsr_request_public(email="not-an-address", type=RequestType.ACCESS)
    with pytest.raises(TicketRefused, match="listed kinds"):
        dsr_request_public(email="g@example.com", type="nope")
    with pytest.raises(TicketRefused, match="Say which"):
        dsr_request_public(email="g@example.com", type=RequestType.RECTIFICATION)


def test_forged_verify_page_token_is_refused():
    for token in ("DSR-AAAAAAAA", "DSR-AAAAAAAA:1abc:forged", ""):
        with pytest.raises(TicketRefused, match="not valid"):
            public_ticket_from_token(token)


def test_verify_by_code_links_the_account_with_that_verified_address_DSR_1(committed, customer):
    mail.outbox.clear()
    _intake, token = public(committed, email=customer.email.upper())
    code, _ = code_email(customer.email)
    with committed():
        ticket = dsr_public_verify(token=token, code=code)
    assert ticket.status != TicketStatus.AWAITING_VERIFICATION
    assert ticket.identity_check == IdentityCheck.EMAIL_CODE and ticket.verified_at
    assert ticket.user == customer
    # The code works once; the page then shows the request rather than asking again.
    with pytest.raises(ChallengeFailed):
        dsr_public_verify(token=token, code=code)


@pytest.mark.parametrize("state", ["unverified", "inactive"])
def test_verify_does_not_link_an_unverified_or_closed_account(committed, state):
    fields = {"email_verified_at": None} if state == "unverified" else {"is_active": False}
    UserFactory(email="holder@example.com", **fields)
    mail.outbox.clear()
    _, token = public(committed, email="holder@example.com")
    code, _ = code_email("holder@example.com")
    with committed():
        ticket = dsr_public_verify(token=token, code=code)
    assert ticket.verified_at is not None and ticket.user is None


def test_verify_by_link_DSR_1(committed):
    mail.outbox.clear()
    _, _token = public(committed)
    _, link = code_email("guest@example.com")
    with committed():
        ticket = dsr_public_verify_link(token=link_token(link))
    assert ticket.identity_check == IdentityCheck.EMAIL_LINK and ticket.verified_at
    with pytest.raises(ChallengeFailed, match="no longer be used"):
        dsr_public_verify_link(token=link_token(link))


def test_wrong_code_is_counted_and_the_ticket_waits(committed):
    mail.outbox.clear()
    _, token = public(committed)
    code, _ = code_email("guest@example.com")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    with pytest.raises(ChallengeFailed, match="4 more tries"):
        dsr_public_verify(token=token, code=wrong)
    ticket = public_ticket_from_token(token)
    assert ticket.status == TicketStatus.AWAITING_VERIFICATION
    assert VerificationChallenge.objects.get(ticket=ticket).attempts == 1


# --- Close my account ----------------------------------------------------------------------
def test_close_account_needs_the_password_DSR_3(customer):
    with pytest.raises(TicketRefused, match="password is not right"):
        dsr_close_account(user=customer, password="wrong")
    assert not Ticket.objects.exists()


def test_close_account_wrong_passwords_are_throttled(customer):
    for _ in range(5):
        with pytest.raises(TicketRefused):
            dsr_close_account(user=customer, password="wrong")
    with pytest.raises(IntakeThrottled):
        dsr_close_account(user=customer, password="wrong")


def test_close_account_opens_an_erasure_identified_by_login_DSR_3(customer, committed):
    with committed():
        intake = dsr_close_account(user=customer, password=PASSWORD)
    ticket = intake.ticket
    assert ticket.type == RequestType.ERASURE and ticket.channel == Channel.ACCOUNT
    assert ticket.identity_check == IdentityCheck.LOGIN and ticket.verified_at
    assert ticket.not_before is None


def test_close_account_waiting_period_sets_not_before_DSR_3(customer, committed, settings):
    settings.DSR_CLOSE_ACCOUNT_WAIT_DAYS = 14
    before = timezone.now()
    with committed():
        ticket = dsr_close_account(user=customer, password=PASSWORD).ticket
    assert ticket.not_before is not None
    assert timedelta(days=14) <= ticket.not_before - before < timedelta(days=14, minutes=1)


def test_staff_cannot_close_their_account_here(support):
    with pytest.raises(TicketRefused, match="staff account"):
        dsr_close_account(user=support, password=PASSWORD)


# --- Unverified requests expire ------------------------------------------------------------
def test_unverified_requests_expire_after_seven_days_DSR_1(committed, settings, customer):
    settings.DSR_UNVERIFIED_DAYS = 7
    now = timezone.now()
    with committed():
        old = ticket_create(
            type=RequestType.AUTOMATED,
            channel=Channel.PUBLIC_FORM,
            actor=None,
            email="old@example.com",
            received_at=now - timedelta(days=7, minutes=1),
        ).ticket
        fresh = ticket_create(
            type=RequestType.AUTOMATED,
            channel=Channel.PUBLIC_FORM,
            actor=None,
            email="fresh@example.com",
            received_at=now - timedelta(days=6, hours=23),
        ).ticket
    mail.outbox.clear()
    with committed():
        assert tickets_expire_unverified(now=now) == 1
        assert tickets_expire_unverified(now=now) == 0  # a second sweep finds nothing
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == TicketStatus.REJECTED
    assert old.rejection_reason == RejectionReason.IDENTITY
    assert fresh.status == TicketStatus.AWAITING_VERIFICATION
    (message,) = [m for m in mail.outbox if "old@example.com" in m.to]
    assert "Identity not verified" in message.body


def test_user_model_is_unchanged_by_intake(customer, committed):
    """Intake never touches the account itself (erasure does that, later)."""
    before = User.objects.filter(pk=customer.pk).values().get()
    public(committed, email=customer.email)
    assert User.objects.filter(pk=customer.pk).values().get() == before
