"""One-time codes and links sent to an email address (DSR-1): keyed hash only, expiry,
the 5-try lock, one use, a newer code replacing the older one, links tied to their code."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail, signing
from django.db import connection
from django.utils import timezone

from dsr.models import Channel, RequestType, Ticket, VerificationChallenge
from dsr.services.challenges import (
    LINK_SALT,
    ChallengeFailed,
    challenge_answered,
    challenge_check,
    challenge_email_after_commit,
    challenge_issue,
    challenge_link_check,
    challenge_link_token,
)
from dsr.services.tickets import ticket_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(committed) -> Ticket:
    with committed():
        return ticket_create(
            type=RequestType.AUTOMATED,
            channel=Channel.PUBLIC_FORM,
            actor=None,
            email="guest@example.com",
        ).ticket


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_code_is_six_digits_stored_only_as_keyed_hash_DSR_1(ticket):
    code = challenge_issue(ticket=ticket)
    assert len(code) == 6 and code.isdigit()
    row = VerificationChallenge.objects.get(ticket=ticket)
    assert code not in row.code_hash
    import hashlib

    # Not a plain hash either: without the key, trying all million codes finds nothing.
    plain = {
        hashlib.sha256(f"{ticket.pk}:verify:{code}".encode()).hexdigest(),
        hashlib.sha256(code.encode()).hexdigest(),
    }
    assert row.code_hash not in plain
    assert row.expires_at == row.created_at + timedelta(minutes=15)


def test_right_code_works_once_DSR_1(ticket):
    code = challenge_issue(ticket=ticket)
    challenge_check(ticket=ticket, code=f" {code[:3]} {code[3:]} ")  # spaces forgiven
    assert challenge_answered(ticket=ticket)
    with pytest.raises(ChallengeFailed, match="no code waiting"):
        challenge_check(ticket=ticket, code=code)


def test_wrong_code_counts_and_locks_after_five_tries_DSR_1(ticket, settings):
    settings.DSR_CODE_MAX_TRIES = 5
    code = challenge_issue(ticket=ticket)
    for left in (4, 3, 2, 1):
        with pytest.raises(ChallengeFailed, match=f"{left} more tr") as exc:
            challenge_check(ticket=ticket, code=_wrong(code))
        assert not exc.value.locked
    with pytest.raises(ChallengeFailed, match="last try") as exc:
        challenge_check(ticket=ticket, code=_wrong(code))
    assert exc.value.locked
    # Locked: even the right code is refused now, and a try is not counted any more.
    with pytest.raises(ChallengeFailed, match="locked") as exc:
        challenge_check(ticket=ticket, code=code)
    assert exc.value.locked
    assert VerificationChallenge.objects.get(ticket=ticket).attempts == 5
    assert not challenge_answered(ticket=ticket)


def test_not_a_code_is_refused_without_counting(ticket):
    challenge_issue(ticket=ticket)
    for junk in ("", "abcdef", "12345", "1234567"):
        with pytest.raises(ChallengeFailed, match="6-digit"):
            challenge_check(ticket=ticket, code=junk)
    assert VerificationChallenge.objects.get(ticket=ticket).attempts == 0


def test_expired_code_is_refused_DSR_1(ticket):
    code = challenge_issue(ticket=ticket)
    VerificationChallenge.objects.filter(ticket=ticket).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(ChallengeFailed, match="expired"):
        challenge_check(ticket=ticket, code=code)


def test_no_challenge_at_all_is_refused(ticket):
    with pytest.raises(ChallengeFailed, match="no code waiting"):
        challenge_check(ticket=ticket, code="123456")


def test_a_new_code_replaces_the_old_one_DSR_1(ticket):
    old = challenge_issue(ticket=ticket)
    new = challenge_issue(ticket=ticket)
    if old != new:
        with pytest.raises(ChallengeFailed):
            challenge_check(ticket=ticket, code=old)
    challenge_check(ticket=ticket, code=new)


def test_purposes_are_separate(ticket):
    code = challenge_issue(ticket=ticket, purpose="download")
    with pytest.raises(ChallengeFailed, match="no code waiting"):
        challenge_check(ticket=ticket, code=code, purpose="verify")
    challenge_check(ticket=ticket, code=code, purpose="download")


def test_link_token_works_once_and_dies_with_its_code_DSR_1(ticket):
    challenge_issue(ticket=ticket)
    token = challenge_link_token(ticket=ticket)
    # Looking (the page a GET shows) does not use it up.
    assert challenge_link_check(token=token, use=False).pk == ticket.pk
    assert challenge_link_check(token=token).pk == ticket.pk
    with pytest.raises(ChallengeFailed, match="no longer be used"):
        challenge_link_check(token=token)


def test_link_dies_when_the_code_is_used_or_replaced(ticket):
    code = challenge_issue(ticket=ticket)
    token = challenge_link_token(ticket=ticket)
    challenge_check(ticket=ticket, code=code)
    with pytest.raises(ChallengeFailed, match="no longer be used"):
        challenge_link_check(token=token)
    challenge_issue(ticket=ticket)
    older = challenge_link_token(ticket=ticket)
    challenge_issue(ticket=ticket)
    with pytest.raises(ChallengeFailed, match="no longer be used"):
        challenge_link_check(token=older)


def test_link_dies_when_the_code_is_locked(ticket, settings):
    code = challenge_issue(ticket=ticket)
    token = challenge_link_token(ticket=ticket)
    for _ in range(settings.DSR_CODE_MAX_TRIES):
        with pytest.raises(ChallengeFailed):
            challenge_check(ticket=ticket, code=_wrong(code))
    with pytest.raises(ChallengeFailed, match="locked"):
        challenge_link_check(token=token)


def test_forged_or_expired_link_is_refused_DSR_1(ticket, settings):
    challenge_issue(ticket=ticket)
    token = challenge_link_token(ticket=ticket)
    challenge_id = VerificationChallenge.objects.get(ticket=ticket).pk
    for forged in (
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        f"{challenge_id}.{ticket.pk}:forged",
        signing.TimestampSigner(salt="another-salt").sign(f"{challenge_id}.{ticket.pk}"),
        # The "download" salt: a link for one purpose is no good for the other.
        signing.TimestampSigner(salt=f"{LINK_SALT}.download").sign(f"{challenge_id}.{ticket.pk}"),
        "garbage",
    ):
        with pytest.raises(ChallengeFailed, match="not valid"):
            challenge_link_check(token=forged)
    settings.DSR_CODE_MINUTES = -1  # any age is past it (signatures count whole seconds)
    with pytest.raises(ChallengeFailed, match="expired"):
        challenge_link_check(token=token)


def test_link_of_another_ticket_cannot_be_swapped(ticket, committed):
    with committed():
        other = ticket_create(
            type=RequestType.AUTOMATED,
            channel=Channel.PUBLIC_FORM,
            actor=None,
            email="someone@example.com",
        ).ticket
    challenge_issue(ticket=ticket)
    challenge_issue(ticket=other)
    mine = VerificationChallenge.objects.get(ticket=ticket).pk
    # A validly signed token naming my challenge with the other ticket is refused.
    signer = signing.TimestampSigner(salt=f"{LINK_SALT}.verify")
    with pytest.raises(ChallengeFailed):
        challenge_link_check(token=signer.sign(f"{mine}.{other.pk}"))


def test_code_email_is_sent_after_commit_with_code_and_link(ticket, committed):
    mail.outbox.clear()
    code = challenge_issue(ticket=ticket)
    with committed():
        challenge_email_after_commit(ticket=ticket, code=code, link="https://x.test/l/abc/")
        assert not mail.outbox  # not before the commit
    (message,) = mail.outbox
    assert message.to == ["guest@example.com"]
    assert code in message.body and "https://x.test/l/abc/" in message.body
    assert ticket.reference in message.subject and code not in message.subject


def test_email_failure_is_logged_not_raised(ticket, committed, settings, caplog):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    with committed():
        challenge_email_after_commit(ticket=ticket, code="123456")
    assert "could not send the verify_code email" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_tries_never_exceed_the_limit_DSR_1(settings):
    """Ten tries at once against a 5-try limit: at most 5 are counted and judged."""
    settings.DSR_CODE_MAX_TRIES = 5
    ticket = ticket_create(
        type=RequestType.AUTOMATED, channel=Channel.PUBLIC_FORM, actor=None, email="g@example.com"
    ).ticket
    code = challenge_issue(ticket=ticket)
    outcomes: list[str] = []
    barrier = threading.Barrier(10)

    def attempt() -> None:
        try:
            barrier.wait()
            challenge_check(ticket=ticket, code=_wrong(code))
        except ChallengeFailed as exc:
            outcomes.append("locked" if "locked" in exc.message else "wrong")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 10
    assert VerificationChallenge.objects.get(ticket=ticket).attempts == 5
    with pytest.raises(ChallengeFailed, match="locked"):
        challenge_check(ticket=ticket, code=code)
