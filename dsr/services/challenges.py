"""One-time codes (and links) sent to a subject's email address (DSR-1).

A public-form requester proves control of the address with a 6-digit code or the link
in the same email ("verify"); a guest downloading an export archive does the same
("download"). Only a keyed hash of a code is stored: a database dump alone cannot be
turned back into working codes. A code expires after DSR_CODE_MINUTES, is locked after
DSR_CODE_MAX_TRIES wrong tries, works once, and a newer code replaces an older one.

The link is a signed token naming the challenge row, so it lives and dies with its code:
using either uses both, and a new code, the expiry or the lock kills the link too.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from dsr.models import Ticket, VerificationChallenge

logger = logging.getLogger("dsr.challenges")

CODE_HASH_SALT = "dsr.challenge-code"
LINK_SALT = "dsr.challenge-link"
CODE_RE = re.compile(r"\d{6}")


class ChallengeFailed(Exception):
    """A code or link that cannot be used; ``message`` is shown to the person.

    ``locked`` is True when the code can no longer be tried at all (too many wrong tries):
    pages answer 403 then, and 400 for an ordinary wrong or expired code.
    """

    def __init__(self, message: str, *, locked: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.locked = locked


NO_CODE = "There is no code waiting for this request any more. Ask for a new code."
EXPIRED = "This code has expired. Ask for a new code."
LOCKED = "Too many wrong codes: this code is locked. Ask for a new code."
BAD_LINK = "This link is not valid. Use the code from the email, or ask for a new code."
EXPIRED_LINK = "This link has expired. Ask for a new code."
USED_LINK = (
    "This link can no longer be used: it was used already, or a newer code replaced it. "
    "Ask for a new code."
)


def _code_hash(*, ticket_id: int, purpose: str, code: str) -> str:
    # Keyed (SECRET_KEY-derived): with a million possible codes, a plain hash would be
    # reversed by trying them all.
    value = f"{ticket_id}:{purpose}:{code}"
    return salted_hmac(CODE_HASH_SALT, value, algorithm="sha256").hexdigest()


def _lifetime() -> timedelta:
    return timedelta(minutes=settings.DSR_CODE_MINUTES)


# --- Codes -----------------------------------------------------------------------------------
def challenge_issue(*, ticket: Ticket, purpose: str = "verify") -> str:
    """A new 6-digit code for *ticket* (earlier unused ones stop working); returns it in clear.

    The caller sends it (``challenge_email_after_commit``); it is never stored in clear.
    """
    code = f"{secrets.randbelow(10**6):06d}"
    now = timezone.now()
    with transaction.atomic():
        # Lock the ticket row: two "send a new code" clicks at once leave one live code.
        Ticket.objects.select_for_update().filter(pk=ticket.pk).first()
        VerificationChallenge.objects.filter(
            ticket=ticket, purpose=purpose, used_at__isnull=True, expires_at__gt=now
        ).update(expires_at=now)
        VerificationChallenge.objects.create(
            ticket=ticket,
            purpose=purpose,
            code_hash=_code_hash(ticket_id=ticket.pk, purpose=purpose, code=code),
            created_at=now,
            expires_at=now + _lifetime(),
        )
    return code


def _live(*, ticket: Ticket, purpose: str) -> VerificationChallenge | None:
    """The newest unused challenge, locked (concurrent tries are counted one by one)."""
    return (
        VerificationChallenge.objects.select_for_update()
        .filter(ticket=ticket, purpose=purpose, used_at__isnull=True)
        .order_by("-created_at", "-id")
        .first()
    )


def _unusable(challenge: VerificationChallenge | None) -> ChallengeFailed | None:
    if challenge is None:
        return ChallengeFailed(NO_CODE)
    if challenge.attempts >= settings.DSR_CODE_MAX_TRIES:
        return ChallengeFailed(LOCKED, locked=True)
    if challenge.expires_at <= timezone.now():
        return ChallengeFailed(EXPIRED)
    return None


def challenge_check(*, ticket: Ticket, code: str, purpose: str = "verify") -> None:
    """Accept *code* once, or raise ChallengeFailed (a wrong code counts as a try).

    Call it outside a transaction, or catch ChallengeFailed inside yours: the counted try
    must be committed, or a rolled-back counter would allow unlimited guesses.
    """
    code = "".join(ch for ch in code if not ch.isspace() and ch != "-")
    if not CODE_RE.fullmatch(code):
        # Not a guess at all (letters, wrong length): nothing to count.
        raise ChallengeFailed("Enter the 6-digit code from the email.")
    failure: ChallengeFailed | None = None
    with transaction.atomic():
        challenge = _live(ticket=ticket, purpose=purpose)
        failure = _unusable(challenge)
        if failure is None and challenge is not None:
            expected = _code_hash(ticket_id=ticket.pk, purpose=purpose, code=code)
            if constant_time_compare(expected, challenge.code_hash):
                challenge.used_at = timezone.now()
                challenge.save(update_fields=["used_at"])
            else:
                challenge.attempts += 1
                challenge.save(update_fields=["attempts"])
                failure = _wrong_code(challenge.attempts)
    # Raised after the block, so the counted try is committed with it.
    if failure is not None:
        raise failure


def _wrong_code(attempts: int) -> ChallengeFailed:
    left = settings.DSR_CODE_MAX_TRIES - attempts
    if left <= 0:
        return ChallengeFailed(
            "This code is not right, and that was the last try: the code is now locked. "
            "Ask for a new code.",
            locked=True,
        )
    tries = "1 more try" if left == 1 else f"{left} more tries"
    return ChallengeFailed(f"This code is not right. You have {tries} with this code.")


def challenge_answered(*, ticket: Ticket, purpose: str = "verify") -> bool:
    """Was the newest code (or its link) of *ticket* used? False when none was ever sent."""
    newest = (
        VerificationChallenge.objects.filter(ticket=ticket, purpose=purpose)
        .order_by("-created_at", "-id")
        .only("used_at")
        .first()
    )
    return newest is not None and newest.used_at is not None


# --- Links -----------------------------------------------------------------------------------
def challenge_link_token(*, ticket: Ticket, purpose: str = "verify") -> str:
    """A signed token for the link in the email, naming the ticket's newest live code."""
    challenge = (
        VerificationChallenge.objects.filter(ticket=ticket, purpose=purpose, used_at__isnull=True)
        .order_by("-created_at", "-id")
        .first()
    )
    if challenge is None:
        raise ChallengeFailed(NO_CODE)
    return signing.TimestampSigner(salt=f"{LINK_SALT}.{purpose}").sign(
        f"{challenge.pk}.{ticket.pk}"
    )


@dataclass(frozen=True)
class _LinkClaim:
    challenge_id: int
    ticket_id: int


def _link_claim(token: str, purpose: str) -> _LinkClaim:
    try:
        payload = signing.TimestampSigner(salt=f"{LINK_SALT}.{purpose}").unsign(
            token, max_age=_lifetime()
        )
    except signing.SignatureExpired as exc:
        raise ChallengeFailed(EXPIRED_LINK) from exc
    except signing.BadSignature as exc:
        raise ChallengeFailed(BAD_LINK) from exc
    parts = payload.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ChallengeFailed(BAD_LINK)
    return _LinkClaim(int(parts[0]), int(parts[1]))


def challenge_link_check(*, token: str, purpose: str = "verify", use: bool = True) -> Ticket:
    """The ticket a link names, using its code up (one use); ChallengeFailed otherwise.

    ``use=False`` only looks (the page a GET shows before its confirm button: mail
    scanners open links, and must not use them up).
    """
    claim = _link_claim(token, purpose)
    with transaction.atomic():
        challenge = _live(ticket=Ticket(pk=claim.ticket_id), purpose=purpose)
        if challenge is None or challenge.pk != claim.challenge_id:
            raise ChallengeFailed(USED_LINK)
        failure = _unusable(challenge)
        if failure is not None:
            raise failure
        if use:
            challenge.used_at = timezone.now()
            challenge.save(update_fields=["used_at"])
        return Ticket.objects.select_related("user").get(pk=claim.ticket_id)


# --- The email ---------------------------------------------------------------------------------
def challenge_email_after_commit(
    *, ticket: Ticket, code: str, link: str = "", template: str = "verify_code", note: str = ""
) -> None:
    """Email *code* (and *link*) to the ticket's address once the transaction commits.

    Sent synchronously in the on-commit callback, not by a Celery task: a task's
    arguments would carry the code in clear through the broker. A failure is logged and
    the page offers "send a new code".
    """
    ticket_id = ticket.pk

    def send() -> None:
        try:
            challenge_email_send(
                ticket_id=ticket_id, code=code, link=link, template=template, note=note
            )
        except Exception:  # SMTP down, bad address: the person asks for a new code
            logger.exception("could not send the %s email of ticket %s", template, ticket_id)

    transaction.on_commit(send)


def challenge_email_send(
    *, ticket_id: int, code: str, link: str = "", template: str = "verify_code", note: str = ""
) -> bool:
    """Send ``emails/dsr/<template>.txt`` with the code to the address that asked."""
    from dsr.emails import ticket_recipient

    ticket = Ticket.objects.select_related("user").filter(pk=ticket_id).first()
    if ticket is None:
        return False
    # The address given on the form is the one to prove; an account's address otherwise.
    to = ticket.email or ticket_recipient(ticket)
    if not to:
        return False
    context = {
        "site_name": settings.SITE_NAME,
        "site_url": settings.SITE_URL,
        "ticket": ticket,
        "code": code,
        "link": link,
        "minutes": settings.DSR_CODE_MINUTES,
        "max_tries": settings.DSR_CODE_MAX_TRIES,
        "note": note,
        "contact": settings.PRIVACY_CONTACT_EMAIL,
    }
    subject = render_to_string(f"emails/dsr/{template}_subject.txt", context).strip()
    body = render_to_string(f"emails/dsr/{template}.txt", context)
    EmailMessage(subject=" ".join(subject.split()), body=body, to=[to]).send()
    return True
