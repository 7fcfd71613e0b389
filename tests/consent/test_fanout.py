"""The generic fan-out engine (common/fanout.py), through the campaign kind (CON-1, CON-2)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.fanout import fanout_progress, fanout_run_batch, fanout_sweep_all
from consent.models import CampaignSend, CampaignStatus, ConsentMethod
from consent.services.campaigns import KIND, campaign_start
from consent.services.marketing import marketing_optout
from tests.conftest import need_service
from tests.consent.marketing_helpers import (
    SELLER_ADDRESS,
    RecordingHandler,
    campaign_make,
    smtp_sink,
    subscriber_make,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(roles_present):
    from accounts import roles

    return UserFactory(email="mia@example.com", role=roles.MARKETING)


@pytest.fixture(autouse=True)
def _seller(settings):
    settings.SELLER_ADDRESS = SELLER_ADDRESS
    settings.SITE_URL = "https://photos.example.org"


def test_campaign_reaches_consenting_and_skips_withdrawn_CON_1_CON_2(
    marketer, django_capture_on_commit_callbacks
) -> None:
    subs = [subscriber_make(f"s{i}@example.com") for i in range(5)]
    campaign = campaign_make()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert campaign_start(campaign=campaign, actor=marketer) == 5
    marketing_optout(email=subs[0].email, method=ConsentMethod.EMAIL_LINK)
    for cb in callbacks:
        cb()
    sent_to = sorted(m.to[0] for m in mail.outbox)
    assert sent_to == sorted(s.email for s in subs[1:])
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT and campaign.finished_at
    assert fanout_progress(kind=KIND, group_id=campaign.pk)["skipped"] == 1


def _queries_for_batch(n: int, marketer, settings) -> int:
    campaign = campaign_make(subject=f"batch {n}")
    for i in range(n):
        subscriber_make(f"b{n}-{i}@example.com")
    settings.MARKETING_BATCH_SIZE = n
    campaign_start(campaign=campaign, actor=marketer)
    with CaptureQueriesContext(connection) as ctx:
        result = fanout_run_batch(kind=KIND, group_id=campaign.pk)
    assert result.sent == n
    return len(ctx.captured_queries)


def test_queries_per_batch_are_constant(marketer, settings) -> None:
    assert _queries_for_batch(10, marketer, settings) == _queries_for_batch(100, marketer, settings)
    assert CampaignSend.objects.filter(status="sent").count() == 110


# --- A worker dying mid-batch -------------------------------------------------------------------


class WorkerDied(BaseException):
    """Stands for the process being killed: nothing after it runs."""


def test_worker_dying_mid_batch_is_recovered_exactly_once_CON_1_CON_2(
    marketer, settings, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    need_service("REDIS_URL", "Redis")  # the journal lives there
    from common import fanout

    subs = [subscriber_make(f"d{i}@example.com") for i in range(8)]
    withdrawn = subs[5]
    campaign = campaign_make()
    settings.MARKETING_BATCH_SIZE = 8
    with smtp_sink(settings) as sink:
        with django_capture_on_commit_callbacks(execute=False):
            campaign_start(campaign=campaign, actor=marketer)
        marketing_optout(email=withdrawn.email, method=ConsentMethod.EMAIL_LINK)

        # The worker sends 3 messages, then dies: no bookkeeping at all after that.
        real_send = fanout._Sender.send
        sent_so_far: list[str] = []

        def send_then_die(self, out):
            if len(sent_so_far) == 3:
                raise WorkerDied
            real_send(self, out)
            sent_so_far.append(out.recipient)

        with monkeypatch.context() as m:
            m.setattr(fanout._Sender, "send", send_then_die)
            m.setattr(fanout, "_finish_rows", lambda *a, **k: None)
            m.setattr(fanout.Journal, "drop", staticmethod(lambda claim: None))
            with pytest.raises(WorkerDied):
                fanout_run_batch(kind=KIND, group_id=campaign.pk)
        assert len(sink.recipients()) == 3
        assert CampaignSend.objects.filter(status="sending").count() == 8

        # Not yet stale: the sweep leaves a possibly live batch alone.
        with django_capture_on_commit_callbacks(execute=True):
            fanout_sweep_all()
        assert CampaignSend.objects.filter(status="sending").count() == 8

        CampaignSend.objects.update(claimed_at=timezone.now() - timedelta(hours=1))
        with django_capture_on_commit_callbacks(execute=True):
            report = fanout_sweep_all()
        assert report[KIND]["sent"] == 3 and report[KIND]["restarted"] == 1

        received = sink.recipients()
    expected = sorted(s.email for s in subs if s != withdrawn)
    assert sorted(received) == expected  # each consenting recipient exactly once
    assert withdrawn.email not in received
    assert CampaignSend.objects.get(subscriber=withdrawn).status == "skipped"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


def test_journal_falls_back_to_the_cache_without_redis(settings) -> None:
    from common.fanout import Journal

    settings.REDIS_URL = ""
    claim = uuid.uuid4()
    journal = Journal(claim)
    journal.record(11)
    journal.record(12)
    assert Journal.read(claim) == {11, 12}
    Journal.drop(claim)
    assert Journal.read(claim) == set()


def test_sweep_finishes_a_campaign_whose_last_batch_died_after_sending(
    marketer, django_capture_on_commit_callbacks
) -> None:
    subscriber_make("only@example.com")
    campaign = campaign_make()
    with django_capture_on_commit_callbacks(execute=False):
        campaign_start(campaign=campaign, actor=marketer)
    CampaignSend.objects.update(status="sent")  # as if recovered, with no batch left to finish
    assert fanout_sweep_all()[KIND]["finished"] == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


# --- SMTP errors ----------------------------------------------------------------------------------


def test_permanent_refusal_fails_that_recipient_only_transient_is_retried(
    marketer, settings, django_capture_on_commit_callbacks
) -> None:
    settings.FANOUT_MAX_ATTEMPTS = 3
    _ok, bad, busy = (subscriber_make(f"{n}@example.com") for n in ("ok", "bad", "busy"))
    campaign = campaign_make()
    handler = RecordingHandler(
        refuse={
            "bad@example.com": "550 5.1.1 No such user",
            "busy@example.com": "451 4.3.0 Try later",
        }
    )
    with smtp_sink(settings, handler):
        with django_capture_on_commit_callbacks(execute=False):
            campaign_start(campaign=campaign, actor=marketer)
        result = fanout_run_batch(kind=KIND, group_id=campaign.pk)
        assert (result.sent, result.failed, result.retry) == (1, 1, 1)
        assert result.retry_in == 30
        failed = CampaignSend.objects.get(subscriber=bad)
        assert failed.status == "failed" and "550" in failed.last_error
        waiting = CampaignSend.objects.get(subscriber=busy)
        assert waiting.status == "pending" and waiting.attempts == 1 and "451" in waiting.last_error
        assert waiting.claimed_at is not None
        assert waiting.claimed_at > timezone.now()  # not before the backoff ends
        # Not due yet: a batch now claims nothing.
        assert fanout_run_batch(kind=KIND, group_id=campaign.pk).claimed == 0
        for attempt in (2, 3):
            CampaignSend.objects.filter(pk=waiting.pk).update(claimed_at=timezone.now())
            fanout_run_batch(kind=KIND, group_id=campaign.pk)
            waiting.refresh_from_db()
            assert waiting.attempts == attempt
        assert waiting.status == "failed" and "gave up after 3 attempts" in waiting.last_error
        assert sorted(handler.recipients()) == ["ok@example.com"]
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT  # nothing pending: finished, with failures


def test_dropped_connection_stops_the_batch_and_keeps_the_rest_pending(
    marketer, settings, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    import smtplib

    from common import fanout

    for i in range(4):
        subscriber_make(f"drop{i}@example.com")
    campaign = campaign_make()
    with smtp_sink(settings) as sink:
        with django_capture_on_commit_callbacks(execute=False):
            campaign_start(campaign=campaign, actor=marketer)
        real_send = fanout._Sender.send
        calls = []

        def flaky(self, out):
            calls.append(out)
            if len(calls) == 2:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            real_send(self, out)

        monkeypatch.setattr(fanout._Sender, "send", flaky)
        result = fanout_run_batch(kind=KIND, group_id=campaign.pk)
        assert (result.sent, result.retry, result.released) == (1, 1, 2)
        assert result.retry_in is not None and not result.more
        rows = CampaignSend.objects.exclude(status="sent")
        now = timezone.now()
        assert all(r.status == "pending" and (r.claimed_at or now) > now for r in rows)
        assert sorted(r.attempts for r in rows) == [0, 0, 1]
        monkeypatch.setattr(fanout._Sender, "send", real_send)
        CampaignSend.objects.filter(status="pending").update(claimed_at=None)
        fanout_run_batch(kind=KIND, group_id=campaign.pk)
        assert len(sink.recipients()) == 4 and len(set(sink.recipients())) == 4


def test_rate_limit_hook_paces_sending(marketer, settings, django_capture_on_commit_callbacks):
    import time

    from common import fanout

    for i in range(12):
        subscriber_make(f"rate{i}@example.com")
    campaign = campaign_make()
    with django_capture_on_commit_callbacks(execute=False):
        campaign_start(campaign=campaign, actor=marketer)
    base = fanout.fanout_kind(KIND)
    throttled = dataclasses.replace(base, name="test.throttled", rate_limit=lambda: 5.0)
    fanout.fanout_register(throttled)
    try:
        started = time.monotonic()
        result = fanout_run_batch(kind="test.throttled", group_id=campaign.pk, size=12)
        elapsed = time.monotonic() - started
    finally:
        fanout._KINDS.pop("test.throttled", None)
    assert result.sent == 12
    assert elapsed >= 1.0  # 12 messages at 5 per second cross at least two seconds


# --- A real worker ------------------------------------------------------------------------------


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_campaign_is_sent_by_a_real_celery_worker_through_redis(settings, roles_present) -> None:
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from accounts import roles
    from config.celery import app as celery_app

    need_service("REDIS_URL", "Redis")
    marketer = UserFactory(email="worker-mia@example.com", role=roles.MARKETING)
    subs = [subscriber_make(f"w{i}@example.com") for i in range(7)]
    settings.MARKETING_BATCH_SIZE = 3  # several batches, chained by the worker
    campaign = campaign_make()

    def close(**_: object) -> None:
        connections.close_all()

    celery_app.conf.task_always_eager = False
    queue = f"fanout-{uuid.uuid4().hex[:10]}"
    old_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    task_postrun.connect(close, weak=False)
    try:
        with smtp_sink(settings) as sink:
            with start_worker(
                celery_app,
                pool="solo",
                perform_ping_check=False,
                queues=[queue],
                shutdown_timeout=30,
            ):
                campaign_start(campaign=campaign, actor=marketer)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    campaign.refresh_from_db()
                    if campaign.status == CampaignStatus.SENT:
                        break
                    time.sleep(0.2)
            received = sink.recipients()
    finally:
        task_postrun.disconnect(close)
        celery_app.conf.task_default_queue = old_queue
        celery_app.amqp.queues.select([old_queue])
    assert campaign.status == CampaignStatus.SENT
    assert sorted(received) == sorted(s.email for s in subs)
