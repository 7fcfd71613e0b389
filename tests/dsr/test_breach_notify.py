"""Telling the affected of a breach: the email fan-out, progress, alerts, the banner (BRE-1)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import Notification
from common.fanout import fanout_run_batch
from dsr.models import BreachNotice, Incident, IncidentRecipient, IncidentStatus
from dsr.services.breach import incident_confirm, incident_create
from dsr.services.breach_notify import (
    KIND,
    breach_alert_sweep,
    incident_progress,
    incident_rate_check,
)
from tests.conftest import login_client
from tests.consent.marketing_helpers import smtp_sink
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

BODY = "We found that an old backup was readable.\nChange your password."
GUEST = "guest@example.net"


def _incident(actor, emails: list[str]) -> Incident:
    return incident_create(
        actor=actor,
        title="Backup exposed",
        aware_at=timezone.now() - timedelta(hours=2),
        description="An old backup bucket was public.",
        message_subject="A security incident affected your data",
        message_body=BODY,
        contact_point="privacy@example.com",
        scope={"rules": [{"kind": "list", "emails": emails}]},
    )


def _confirmed_not_sent(actor, emails, django_capture_on_commit_callbacks) -> Incident:
    """Confirm, but keep the fan-out's tasks from running (the test drives the batches)."""
    incident = _incident(actor, emails)
    with django_capture_on_commit_callbacks(execute=False):
        incident_confirm(incident=incident, actor=actor)
    incident.refresh_from_db()
    return incident


def test_confirm_emails_each_recipient_exactly_once_with_the_stored_text_BRE_1(
    privacy_officer, customer, other_customer, committed
) -> None:
    incident = _incident(privacy_officer, [customer.email, GUEST])
    with committed():
        incident_confirm(incident=incident, actor=privacy_officer)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([customer.email, GUEST])
    bodies = [m.body.replace("\r\n", "\n") for m in mail.outbox]  # CRLF on the wire
    assert all(BODY in body and incident.reference in body for body in bodies)
    assert len({m.extra_headers["Message-ID"] for m in mail.outbox}) == 2
    assert mail.outbox[0].subject == "A security incident affected your data"
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.NOTIFIED
    # Batches run again (a redelivered task, the sweep): nothing is sent twice.
    assert fanout_run_batch(kind=KIND, group_id=incident.pk).claimed == 0
    assert len(mail.outbox) == 2
    # One in-site notice, for the account holder only; the unaffected customer has none.
    assert list(BreachNotice.objects.values_list("user", flat=True)) == [customer.pk]
    progress = incident_progress(incident=incident)
    assert (progress.sent, progress.pending, progress.failed, progress.at_risk) == (2, 0, 0, False)


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_at_once_send_no_duplicates_BRE_1(
    privacy_officer, settings, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from consent.tasks import fanout_batch

    # Real commits here: keep the confirmation's own tasks out, the threads are the workers.
    monkeypatch.setattr(fanout_batch, "delay", lambda *args: None)
    users = [UserFactory(email=f"w{i}@example.com") for i in range(30)]
    incident = _confirmed_not_sent(
        privacy_officer, [u.email for u in users], django_capture_on_commit_callbacks
    )
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while fanout_run_batch(kind=KIND, group_id=incident.pk, size=4).claimed:
                pass
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)
        finally:
            connection.close()

    with smtp_sink(settings) as sink:
        threads = [threading.Thread(target=worker) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors
    sent = sink.recipients()
    assert len(sent) == 30 and len(set(sent)) == 30
    assert IncidentRecipient.objects.filter(incident=incident, status="sent").count() == 30
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.NOTIFIED


def test_smtp_down_retries_reports_per_recipient_and_shows_at_risk_BRE_1(
    privacy_officer, customer, settings, django_capture_on_commit_callbacks
) -> None:
    incident = _confirmed_not_sent(
        privacy_officer, [customer.email, GUEST], django_capture_on_commit_callbacks
    )
    with smtp_sink(settings):
        port = settings.EMAIL_PORT
    settings.EMAIL_PORT = port  # the sink is stopped: connections are refused
    # The engine records the failed attempt on every claimed row and asks for a retry
    # after the backoff (the task re-enqueues itself; the sweep also restarts the group).
    result = fanout_run_batch(kind=KIND, group_id=incident.pk)
    assert result.retry_in is not None and not result.more
    rows = list(IncidentRecipient.objects.filter(incident=incident))
    assert all(r.status == "pending" and r.attempts == 1 for r in rows)
    assert all("refused" in r.last_error.lower() for r in rows)  # reported per recipient
    progress = incident_progress(incident=incident)
    assert progress.at_risk and progress.pending == 2 and progress.sent == 0
    # The server is back: the retry sends each once, and the incident is notified.
    with smtp_sink(settings) as sink:
        IncidentRecipient.objects.filter(incident=incident).update(claimed_at=None)
        fanout_run_batch(kind=KIND, group_id=incident.pk)
    assert sorted(sink.recipients()) == sorted([customer.email, GUEST])
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.NOTIFIED


def test_permanent_refusal_is_reported_on_that_recipient_BRE_1(
    privacy_officer, customer, settings, django_capture_on_commit_callbacks
) -> None:
    from tests.consent.marketing_helpers import RecordingHandler

    incident = _confirmed_not_sent(
        privacy_officer, [customer.email, GUEST], django_capture_on_commit_callbacks
    )
    handler = RecordingHandler(refuse={GUEST: "550 5.1.1 No such user"})
    with smtp_sink(settings, handler):
        fanout_run_batch(kind=KIND, group_id=incident.pk)
    failed = IncidentRecipient.objects.get(incident=incident, email=GUEST)
    assert failed.status == "failed" and "550" in failed.last_error
    progress = incident_progress(incident=incident)
    assert (progress.sent, progress.failed, progress.at_risk) == (1, 1, True)


def test_subject_erased_between_scope_and_send_is_skipped_and_counted_BRE_1(
    privacy_officer, customer, other_customer, django_capture_on_commit_callbacks
) -> None:
    incident = _confirmed_not_sent(
        privacy_officer, [customer.email, other_customer.email], django_capture_on_commit_callbacks
    )
    customer.email = f"erased-{customer.pk}@erased.invalid"
    customer.is_active = False
    customer.save()
    result = fanout_run_batch(kind=KIND, group_id=incident.pk)
    assert (result.sent, result.skipped) == (1, 1)
    assert [m.to[0] for m in mail.outbox] == [other_customer.email]
    skipped = IncidentRecipient.objects.get(incident=incident, status="skipped")
    assert "erased" in skipped.last_error
    assert incident_progress(incident=incident).skipped == 1
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.NOTIFIED


def test_rate_check_warns_officers_when_the_deadline_cannot_be_met_BRE_1(
    privacy_officer, customer, other_customer, settings, django_capture_on_commit_callbacks
) -> None:
    settings.BREACH_SEND_RATE = 0.00001  # 2 emails need ~2.3 days
    incident = _confirmed_not_sent(
        privacy_officer, [customer.email, other_customer.email], django_capture_on_commit_callbacks
    )
    check = incident_rate_check(incident=incident)
    assert not check.ok and check.recipients == 2 and "BREACH_SEND_RATE" in check.message
    assert Notification.objects.filter(user=privacy_officer, title__contains="at risk").exists()
    assert incident.status == IncidentStatus.NOTIFYING
    settings.BREACH_SEND_RATE = 100
    assert incident_rate_check(incident=incident).ok


def test_sweep_alerts_officers_at_50_and_80_percent_once_each_BRE_1(
    privacy_officer, customer, django_capture_on_commit_callbacks
) -> None:
    incident = _confirmed_not_sent(
        privacy_officer, [customer.email], django_capture_on_commit_callbacks
    )
    assert incident.confirmed_at and incident.users_due
    span = incident.users_due - incident.confirmed_at

    def alerts() -> int:
        return Notification.objects.filter(user=privacy_officer, title__contains="% of").count()

    assert breach_alert_sweep(now=incident.confirmed_at + span * 0.3)["alerts"] == 0
    assert breach_alert_sweep(now=incident.confirmed_at + span * 0.6)["alerts"] == 1
    assert breach_alert_sweep(now=incident.confirmed_at + span * 0.7)["alerts"] == 0
    assert breach_alert_sweep(now=incident.confirmed_at + span * 0.85)["alerts"] == 1
    assert alerts() == 2
    # All sent: no alert even late in the clock.
    fanout_run_batch(kind=KIND, group_id=incident.pk)
    other = _confirmed_not_sent(
        privacy_officer, ["x@example.net"], django_capture_on_commit_callbacks
    )
    fanout_run_batch(kind=KIND, group_id=other.pk)
    assert breach_alert_sweep(now=incident.confirmed_at + span * 0.9)["alerts"] == 0


# --- The banner -----------------------------------------------------------------------------


def test_banner_shows_until_acknowledged_and_only_to_the_affected_BRE_1(
    privacy_officer, customer, other_customer, django_capture_on_commit_callbacks
) -> None:
    incident = _confirmed_not_sent(
        privacy_officer, [customer.email], django_capture_on_commit_callbacks
    )
    notice = BreachNotice.objects.get(incident=incident, user=customer)
    page = reverse("dsr:requests")
    affected, unaffected = login_client(customer), login_client(other_customer)
    body = affected.get(page).content.decode()
    assert 'id="breach-notice"' in body and reverse("dsr:breach_notice", args=[notice.pk]) in body
    assert 'id="breach-notice"' not in unaffected.get(page).content.decode()
    # The notice page shows the stored message.
    shown = affected.get(reverse("dsr:breach_notice", args=[notice.pk]))
    assert shown.status_code == 200 and "an old backup was readable" in shown.content.decode()
    response = affected.post(reverse("dsr:breach_ack", args=[notice.pk]), {"next": page})
    assert response.status_code == 302 and response["Location"] == page
    notice.refresh_from_db()
    assert notice.acknowledged_at is not None
    assert 'id="breach-notice"' not in affected.get(page).content.decode()


def test_another_users_notice_is_404_BRE_1(
    privacy_officer, customer, other_customer, django_capture_on_commit_callbacks
) -> None:
    incident = _confirmed_not_sent(
        privacy_officer, [customer.email], django_capture_on_commit_callbacks
    )
    notice = BreachNotice.objects.get(incident=incident, user=customer)
    intruder = login_client(other_customer)
    assert intruder.get(reverse("dsr:breach_notice", args=[notice.pk])).status_code == 404
    assert intruder.post(reverse("dsr:breach_ack", args=[notice.pk])).status_code == 404
    notice.refresh_from_db()
    assert notice.acknowledged_at is None
    assert (
        login_client(customer).get(reverse("dsr:breach_ack", args=[notice.pk])).status_code == 405
    )


# --- A real worker --------------------------------------------------------------------------


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_confirmation_is_sent_by_a_real_celery_worker_through_redis_BRE_1(
    settings, privacy_officer
) -> None:
    import time
    import uuid

    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from config.celery import app as celery_app
    from tests.conftest import need_service

    need_service("REDIS_URL", "Redis")
    emails = [f"rw{i}@example.com" for i in range(7)]
    for address in emails:
        UserFactory(email=address)
    settings.BREACH_BATCH_SIZE = 3  # several batches, chained by the worker
    incident = _incident(privacy_officer, [*emails, GUEST])

    def close(**_: object) -> None:
        connections.close_all()

    celery_app.conf.task_always_eager = False
    queue = f"breach-{uuid.uuid4().hex[:10]}"
    old_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    task_postrun.connect(close, weak=False)
    try:
        with smtp_sink(settings) as sink:
            with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=[queue]):
                incident_confirm(incident=incident, actor=privacy_officer)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    incident.refresh_from_db()
                    if incident.status == IncidentStatus.NOTIFIED:
                        break
                    time.sleep(0.2)
            received = sink.recipients()
    finally:
        task_postrun.disconnect(close)
        celery_app.conf.task_default_queue = old_queue
        celery_app.amqp.queues.select([old_queue])
    assert incident.status == IncidentStatus.NOTIFIED
    assert sorted(received) == sorted([*emails, GUEST])
