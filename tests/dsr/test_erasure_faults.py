"""Erasure under faults: storage down, a worker killed mid-step, runs repeated (DSR-3).

Never a half-erased state unreported: a step that cannot finish is shown on the ticket,
retried with backoff, and the erasure resumes where it stopped with the same end state.
"""

from __future__ import annotations

import socket
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from dsr.models import ErasureStep, StepStatus, TicketStatus
from dsr.services.erasure import erasure_leftovers, erasure_resume, erasure_run
from dsr.services.erasure_steps import FILES, TELL
from images.models import Photo
from orders.models import Invoice
from tests.conftest import s3_bucket
from tests.dsr.test_erasure import close_account, rich_customer, stored_keys

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _storage_down(settings: Any) -> dict[str, Any]:
    """Point the default storage at a dead endpoint; returns the working options."""
    working = dict(settings.STORAGES["default"]["OPTIONS"])
    from botocore.config import Config

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {
                **working,
                "endpoint_url": f"http://127.0.0.1:{_closed_port()}",
                "client_config": Config(retries={"max_attempts": 1}, connect_timeout=1),
            },
        },
    }
    return working


def _storage_up(settings: Any, working: dict[str, Any]) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": working},
    }


def test_storage_down_blocks_the_step_and_the_sweep_resumes_it_DSR_3(
    settings: Any, committed: Any
) -> None:
    s3, bucket = s3_bucket(settings, versioned=True)
    rich = rich_customer()
    working = _storage_down(settings)

    ticket = close_account(rich.user, committed)

    # The ticket shows the blocked step; nothing after it ran, and it is not fulfilled.
    assert ticket.status == TicketStatus.IN_PROGRESS
    assert ticket.blocked_reason == "Storage unavailable: stored files; retrying"
    files = ticket.erasure_steps.get(key=FILES)
    assert files.status == StepStatus.BLOCKED and files.attempts >= 1
    assert "EndpointConnectionError" in files.last_error or "Connect" in files.last_error
    assert ticket.events.filter(note__startswith="Blocked: Storage unavailable").exists()
    later = ticket.erasure_steps.filter(position__gt=files.position)
    assert set(later.values_list("status", flat=True)) == {StepStatus.PENDING}
    assert Photo.objects.filter(order=rich.order).exists()  # rows stay until files go
    assert set(rich.files) <= set(stored_keys(s3, bucket))
    # The account was already closed (steps before the files): no half-open state.
    rich.user.refresh_from_db()
    assert not rich.user.is_active

    # Within the backoff the sweep leaves it; once elapsed, it resumes and finishes.
    assert files.finished_at is not None
    with committed():
        assert erasure_resume(now=files.finished_at + timedelta(seconds=1)) == 0
    _storage_up(settings, working)
    with committed():
        assert erasure_resume(now=timezone.now() + timedelta(hours=1)) == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED and ticket.blocked_reason == ""
    assert set(ticket.erasure_steps.values_list("status", flat=True)) == {StepStatus.DONE}
    files.refresh_from_db()  # its history: retried, and why
    assert files.attempts >= 2 and "Connect" in files.last_error
    assert ticket.events.filter(kind="step").count() >= 2  # blocked, resumed
    assert not set(rich.files) & set(stored_keys(s3, bucket))
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email) == {}
    assert Invoice.objects.get(pk=rich.invoice.pk).buyer_email == ""


def test_worker_killed_mid_step_is_resumed_when_stale_DSR_3(settings: Any, committed: Any) -> None:
    s3, bucket = s3_bucket(settings, versioned=True)
    rich = rich_customer()
    # The run is queued but its worker "dies" inside the files step: the message is gone,
    # the step is RUNNING, and part of the files were already deleted.
    ticket = close_account(rich.user, nullcontext)  # on-commit work never runs
    assert ticket.status == TicketStatus.IN_PROGRESS
    step = ErasureStep.objects.filter(ticket=ticket, key=FILES)
    step.update(status=StepStatus.RUNNING, started_at=timezone.now(), attempts=1)
    s3.delete_object(Bucket=bucket, Key=rich.files[0])  # a delete marker: versions remain

    # While the claim is fresh nobody else runs it (no double work) ...
    assert erasure_run(ticket_id=ticket.pk) == "busy"
    with committed():
        assert erasure_resume(now=timezone.now() + timedelta(minutes=1)) == 0
    # ... once older than the hard time limit it is stale, and re-run from that step.
    limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 61)
    step.update(started_at=timezone.now() - limit)
    with committed():
        assert erasure_resume(now=timezone.now()) == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED
    assert ticket.erasure_steps.get(key=FILES).attempts == 2
    assert not set(rich.files) & set(stored_keys(s3, bucket))
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email) == {}


def test_a_step_re_run_after_its_mark_was_lost_gives_the_same_end_state_DSR_3(
    committed: Any,
) -> None:
    """Idempotent steps: a step done but not marked (worker died before the mark) runs
    again without counting or changing anything twice."""
    rich = rich_customer()
    ticket = close_account(rich.user, committed)
    outcome = ticket.outcome
    ErasureStep.objects.filter(ticket=ticket).exclude(key=TELL).update(status=StepStatus.PENDING)
    sent = len(mail.outbox)
    with committed():
        assert erasure_run(ticket_id=ticket.pk) == "done"
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED
    assert ticket.outcome == outcome  # the receipt was not written twice
    assert len(mail.outbox) == sent  # nor the subject told twice
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email) == {}


def test_email_down_at_the_end_keeps_the_address_until_it_is_sent_DSR_3(
    settings: Any, committed: Any
) -> None:
    """The subject must be told: with SMTP down, the last step blocks and keeps the
    address (only) on the ticket; it is erased once the email went."""
    rich = rich_customer()
    ticket = close_account(rich.user, nullcontext)  # received; the run not started yet
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _closed_port()
    with committed():
        assert erasure_run(ticket_id=ticket.pk) == "blocked"
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FULFILLED
    tell = ticket.erasure_steps.get(key=TELL)
    assert tell.status == StepStatus.BLOCKED
    assert ticket.email == rich.email and ticket.blocked_reason.startswith("Email could not")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with committed():
        assert erasure_resume(now=timezone.now() + timedelta(hours=1)) == 1
    ticket.refresh_from_db()
    assert ticket.email == "" and ticket.erasure_steps.get(key=TELL).status == StepStatus.DONE
    assert mail.outbox[-1].to == [rich.email]
    assert erasure_leftovers(user_id=rich.user.pk, email=rich.email) == {}
