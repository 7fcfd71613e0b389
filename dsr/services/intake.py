"""Intake from the account page and the public form (with email verification) (DSR-1).

An account holder is identified by the login. Anyone else (a guest who ordered without
an account, a non-user, a customer who cannot log in) uses the public form: the request
waits for a code sent to the address given, and nothing on the way tells the person
whether that address has an account or any earlier request.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User, normalize_email
from dsr.models import (
    Channel,
    IdentityCheck,
    Jurisdiction,
    RejectionReason,
    RequestType,
    Ticket,
    TicketStatus,
)
from dsr.services.challenges import (
    ChallengeFailed,
    challenge_check,
    challenge_email_after_commit,
    challenge_issue,
    challenge_link_check,
    challenge_link_token,
)
from dsr.services.tickets import (
    Intake,
    TicketRefused,
    TicketStateError,
    ticket_create,
    ticket_note,
    ticket_reject,
    ticket_verify,
)

PUBLIC_PAGE_SALT = "dsr.public-ticket"
DETAILS_REQUIRED = {
    RequestType.RECTIFICATION: "Say which data is wrong and what it should be.",
    RequestType.OBJECTION: "Say which processing you object to, and why.",
}
DETAILS_MAX = 5000
CLOSE_TRIES = 5  # wrong passwords per CLOSE_WINDOW on "Close my account"
CLOSE_WINDOW = 15 * 60


class IntakeThrottled(TicketRefused):
    """Too many requests from one address or for one email: answered with 429."""


# --- Checks shared by both intakes -----------------------------------------------------------
def _clean(*, type: str, jurisdiction: str, details: str, direct_marketing: bool) -> str:
    if type not in RequestType.values:
        raise TicketRefused("Choose one of the listed kinds of request.")
    if jurisdiction not in Jurisdiction.values:
        raise TicketRefused("Choose GDPR or CCPA.")
    details = (details or "").strip()
    if len(details) > DETAILS_MAX:
        raise TicketRefused(f"Please keep the details under {DETAILS_MAX} characters.")
    needed = DETAILS_REQUIRED.get(RequestType(type))
    # An objection to direct marketing needs no reason: it is honoured at once (CON-2).
    if needed and not details and not (type == RequestType.OBJECTION and direct_marketing):
        raise TicketRefused(needed)
    return details


def _jurisdiction_for(type: str, jurisdiction: str) -> str:
    # Shine the Light is Californian law with its own clock, whatever box was ticked.
    return Jurisdiction.CCPA if type == RequestType.SHINE_THE_LIGHT else jurisdiction


# --- From the account page -------------------------------------------------------------------
def dsr_request_from_account(
    *,
    user: User,
    type: str,
    jurisdiction: str = Jurisdiction.GDPR,
    details: str = "",
    direct_marketing: bool = False,
    channel: str = Channel.ACCOUNT,
) -> Intake:
    """A logged-in person's request: identified by the login, so it starts at once.

    *channel* is API when it comes through the REST API (the same rules apply).
    """
    if not user.is_authenticated or not user.is_active:
        raise TicketRefused("This account is closed; use the public request form.")
    details = _clean(
        type=type, jurisdiction=jurisdiction, details=details, direct_marketing=direct_marketing
    )
    if type == RequestType.ERASURE and user.is_staff:
        raise TicketRefused(_STAFF_ERASURE)
    return ticket_create(
        type=type,
        channel=channel,
        actor=user,
        user=user,
        jurisdiction=_jurisdiction_for(type, jurisdiction),
        details=details,
        direct_marketing=direct_marketing and type == RequestType.OBJECTION,
        identity_check=IdentityCheck.LOGIN,
    )


_STAFF_ERASURE = (
    "A staff account is closed by an administrator, who removes its access first: "
    "ask the privacy officer."
)


def _close_throttled(user: User) -> bool:
    key = f"{settings.CACHE_PREFIX}:dsr:close:{user.pk}"
    cache.add(key, 0, CLOSE_WINDOW)
    try:
        return cache.incr(key) > CLOSE_TRIES
    except ValueError:  # expired between add and incr
        return False


def dsr_close_account(*, user: User, password: str) -> Intake:
    """ "Close my account" (DSR-3): an erasure request, checked by the password again.

    The erasure honours ``not_before`` (DSR_CLOSE_ACCOUNT_WAIT_DAYS, default none).
    """
    if not user.is_authenticated or not user.is_active:
        raise TicketRefused("This account is already closed.")
    if user.is_staff:
        raise TicketRefused(_STAFF_ERASURE)
    if not password or not user.check_password(password):
        if _close_throttled(user):
            raise IntakeThrottled("Too many wrong passwords. Try again in 15 minutes.")
        raise TicketRefused("The password is not right.")
    wait = settings.DSR_CLOSE_ACCOUNT_WAIT_DAYS
    return ticket_create(
        type=RequestType.ERASURE,
        channel=Channel.ACCOUNT,
        actor=user,
        user=user,
        details="Close my account.",
        identity_check=IdentityCheck.LOGIN,
        not_before=timezone.now() + timedelta(days=wait) if wait > 0 else None,
    )


# --- The public form -------------------------------------------------------------------------
def public_ticket_token(ticket: Ticket) -> str:
    """The opaque, signed name of a public ticket in the verify page's address."""
    return signing.TimestampSigner(salt=PUBLIC_PAGE_SALT).sign(ticket.reference)


def public_ticket_from_token(token: str) -> Ticket:
    """The ticket a verify page's token names; TicketRefused if forged or too old."""
    max_age = timedelta(days=settings.DSR_UNVERIFIED_DAYS + 1)
    try:
        reference = signing.TimestampSigner(salt=PUBLIC_PAGE_SALT).unsign(token, max_age=max_age)
    except signing.BadSignature as exc:  # includes SignatureExpired
        raise TicketRefused("This page's address is not valid. Make the request again.") from exc
    ticket = Ticket.objects.select_related("user").filter(reference=reference).first()
    if ticket is None:
        raise TicketRefused("This request no longer exists. Make the request again.")
    return ticket


def _digest(value: str) -> str:
    # Cache keys hold no address in clear (the cache is not a personal-data store).
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def _throttle_ip(ip_address: str | None) -> None:
    if not ip_address:
        return
    key = f"{settings.CACHE_PREFIX}:dsr:public:ip:{_digest(ip_address)}"
    cache.add(key, 0, 3600)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: a new hour
        count = 1
    if count > settings.DSR_PUBLIC_PER_IP_HOUR:
        raise IntakeThrottled(
            "Too many requests from your network in the last hour. Please try again later."
        )


def _throttle_email(email: str) -> None:
    """One new code per address per minute (each email is a message to a stranger's inbox)."""
    if not cache.add(f"{settings.CACHE_PREFIX}:dsr:public:email:{_digest(email)}", 1, 60):
        raise IntakeThrottled(
            "We have just sent a code to this address. Wait a minute before asking for another."
        )


def _send_code(ticket: Ticket, *, note: str = "") -> None:
    code = challenge_issue(ticket=ticket, purpose="verify")
    link_token = challenge_link_token(ticket=ticket, purpose="verify")
    link = settings.SITE_URL + reverse("dsr:public_verify_link", args=[link_token])
    challenge_email_after_commit(ticket=ticket, code=code, link=link, note=note)


def dsr_request_public(
    *,
    email: str,
    type: str,
    jurisdiction: str = Jurisdiction.GDPR,
    details: str = "",
    direct_marketing: bool = False,
    ip_address: str | None = None,
) -> tuple[Intake, str]:
    """A public-form request: waits for the code emailed to *email*; returns the intake and
    the token of its verify page.

    The answer is the same whether or not the address has an account or earlier
    requests: a refusal that depends on the address's history (an export asked for less
    than 24 hours ago) goes into the email, to the address's owner, not onto the page.
    """
    email = normalize_email(email)
    if not email or "@" not in email:
        raise TicketRefused("Enter the email address the request is about.")
    details = _clean(
        type=type, jurisdiction=jurisdiction, details=details, direct_marketing=direct_marketing
    )
    _throttle_ip(ip_address)
    _throttle_email(email)
    with transaction.atomic():
        try:
            intake = ticket_create(
                type=type,
                channel=Channel.PUBLIC_FORM,
                actor=None,
                email=email,
                jurisdiction=_jurisdiction_for(type, jurisdiction),
                details=details,
                direct_marketing=direct_marketing and type == RequestType.OBJECTION,
            )
            note = ""
        except TicketRefused as exc:
            if exc.existing is None:
                raise
            intake = Intake(exc.existing, False, exc.message)
            note = exc.message
        _send_code(intake.ticket, note=note)
    return intake, public_ticket_token(intake.ticket)


def dsr_public_resend(*, token: str, ip_address: str | None = None) -> Ticket:
    """ "Send a new code": the old code and link stop working."""
    ticket = public_ticket_from_token(token)
    _throttle_ip(ip_address)
    _throttle_email(ticket.email)
    with transaction.atomic():
        _send_code(ticket)
    return ticket


def dsr_public_verify(*, token: str, code: str) -> Ticket:
    """The code from the email: the request is verified and its fulfilment starts."""
    ticket = public_ticket_from_token(token)
    failure: ChallengeFailed | None = None
    with transaction.atomic():
        try:
            challenge_check(ticket=ticket, code=code, purpose="verify")
        except ChallengeFailed as exc:
            # Leave the block normally: the counted try must be committed (5-try lock).
            failure = exc
        else:
            ticket = _verified(ticket, method=IdentityCheck.EMAIL_CODE)
    if failure is not None:
        raise failure
    return ticket


def dsr_public_verify_link(*, token: str) -> Ticket:
    """The link from the email (after the page's confirm button): same as the code."""
    with transaction.atomic():
        ticket = challenge_link_check(token=token, purpose="verify", use=True)
        return _verified(ticket, method=IdentityCheck.EMAIL_LINK)


def _account_for(email: str) -> User | None:
    """The account whose verified address this is: the subject is that account's holder."""
    return (
        User.objects.filter(
            email__iexact=email, is_active=True, email_verified_at__isnull=False
        ).first()
        if email
        else None
    )


def _verified(ticket: Ticket, *, method: str) -> Ticket:
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if ticket.status != TicketStatus.AWAITING_VERIFICATION:
        # Merged into a request verified earlier, or verified by staff meanwhile.
        return ticket
    if ticket.user_id is None:
        account = _account_for(ticket.email)
        if account is not None:
            # Whoever controls the account's verified address is its holder: the request
            # covers the account's data too, and its answers reach the account.
            Ticket.objects.filter(pk=ticket.pk).update(user=account, updated_at=timezone.now())
            ticket.user = account
            ticket_note(
                ticket=ticket,
                actor=None,
                note="The verified address is an account's address: linked to that account.",
            )
    return ticket_verify(ticket=ticket, actor=None, method=method)


# --- The sweep -------------------------------------------------------------------------------
def tickets_expire_unverified(*, now: datetime) -> int:
    """Public requests never verified within DSR_UNVERIFIED_DAYS are rejected (identity)."""
    cutoff = now - timedelta(days=settings.DSR_UNVERIFIED_DAYS)
    ids = list(
        Ticket.objects.filter(
            status=TicketStatus.AWAITING_VERIFICATION, received_at__lt=cutoff
        ).values_list("pk", flat=True)[:500]
    )
    done = 0
    text = (
        f"The request was not confirmed with the code sent by email within "
        f"{settings.DSR_UNVERIFIED_DAYS} days. You can make it again at any time."
    )
    for pk in ids:
        ticket = Ticket.objects.filter(pk=pk).first()
        if ticket is None:
            continue
        try:
            ticket_reject(ticket=ticket, actor=None, reason=RejectionReason.IDENTITY, text=text)
        except TicketStateError:
            continue  # verified at the last moment: nothing to expire
        done += 1
    return done
