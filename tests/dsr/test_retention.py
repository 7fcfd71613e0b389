"""The retention engine (LOG-2, ACC-1 unverified accounts) and its verification alert."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Notification, RequestLog, User
from dsr.models import RetentionRun, RetentionRunStatus
from dsr.services import retention as engine
from dsr.services.retention import retention_run_all
from tests.conftest import s3_bucket
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _log_line(age: timedelta, **kw: object) -> RequestLog:
    return RequestLog.objects.create(
        request_id=uuid.uuid4(),
        time=timezone.now() - age,
        ip_address="203.0.113.5",
        method="GET",
        path="/",
        status=200,
        **kw,
    )


def test_request_log_older_than_30_days_is_purged_LOG_2() -> None:
    old = _log_line(timedelta(days=30, minutes=1))
    fresh = _log_line(timedelta(days=29, hours=23))
    runs = retention_run_all(force=True)
    assert not RequestLog.objects.filter(pk=old.pk).exists()
    assert RequestLog.objects.filter(pk=fresh.pk).exists()
    report = next(r for r in runs if r.rule == "accounts.RequestLog")
    assert report.status == RetentionRunStatus.OK
    assert report.rows_removed == 1 and report.overdue_after == 0
    assert report.finished_at is not None


def test_purge_works_in_chunks(settings) -> None:
    settings.RETENTION_RANGE_CHUNK_SIZE = 7
    for _ in range(50):
        _log_line(timedelta(days=40))
    keep = [_log_line(timedelta(days=1)) for _ in range(3)]
    progress: list[int] = []
    run = engine.retention_run_rule(
        entry=engine.registry.get("accounts.RequestLog"),
        progress=lambda rule, n: progress.append(n),
    )
    assert run.rows_removed == 50
    assert len(progress) >= 7  # one progress call per chunk
    assert set(RequestLog.objects.values_list("pk", flat=True)) == {r.pk for r in keep}


def test_unverified_accounts_removed_after_7_days_with_their_files_ACC_1() -> None:
    stale = UserFactory(email_verified_at=None)
    User.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(days=8))
    name = default_storage.save("profile-images/stale.jpg", ContentFile(b"jpeg"))
    User.objects.filter(pk=stale.pk).update(profile_image=name)
    recent = UserFactory(email_verified_at=None)
    verified = UserFactory()
    User.objects.filter(pk=verified.pk).update(created_at=timezone.now() - timedelta(days=90))
    retention_run_all(force=True)
    assert not User.objects.filter(pk=stale.pk).exists()
    assert not default_storage.exists(name)
    assert User.objects.filter(pk__in=[recent.pk, verified.pk]).count() == 2


def test_storage_outage_keeps_the_row_and_alerts_then_retries(monkeypatch, privacy_officer) -> None:
    """No row is deleted while its file remains; the verification check alerts officers."""
    stale = UserFactory(email_verified_at=None, profile_image="profile-images/x.jpg")
    User.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(days=9))

    def storage_down(name: str, storage: object = None) -> None:
        raise ConnectionError("storage unreachable")

    monkeypatch.setattr(engine, "storage_delete_everywhere", storage_down)
    run = next(r for r in retention_run_all(force=True) if r.rule == "accounts.User")
    assert User.objects.filter(pk=stale.pk).exists()
    assert run.status == RetentionRunStatus.PARTIAL
    assert run.rows_kept_for_retry == 1 and run.overdue_after == 1
    assert "file not deleted" in run.errors
    alert = Notification.objects.get(user=privacy_officer)
    assert "Retention check failed" in alert.title and "accounts.User: 1" in alert.body

    monkeypatch.undo()
    retention_run_all(force=True)
    assert not User.objects.filter(pk=stale.pk).exists()


def test_verification_alert_fires_when_a_rule_cannot_purge_LOG_2(
    monkeypatch, privacy_officer, caplog
) -> None:
    """A failing rule is reported, the others still run, and the old row raises the alarm."""
    old_line = _log_line(timedelta(days=45))
    old_note = Notification.objects.create(user=privacy_officer, title="ancient")
    Notification.objects.filter(pk=old_note.pk).update(
        created_at=timezone.now() - timedelta(days=400)
    )
    real_apply = engine._apply_rule

    def broken(entry, rule, run, cutoff, progress):
        if entry.label == "accounts.RequestLog":
            raise RuntimeError("disk full")
        return real_apply(entry, rule, run, cutoff, progress)

    monkeypatch.setattr(engine, "_apply_rule", broken)
    runs = {r.rule: r for r in retention_run_all(force=True)}
    assert runs["accounts.RequestLog"].status == RetentionRunStatus.FAILED
    assert "disk full" in runs["accounts.RequestLog"].errors
    assert runs["accounts.Notification"].rows_removed == 1  # the others still ran
    assert RequestLog.objects.filter(pk=old_line.pk).exists()
    assert "retention verification failed" in caplog.text
    assert Notification.objects.filter(
        user=privacy_officer, title__startswith="Retention check failed"
    ).exists()
    monkeypatch.undo()
    retention_run_all(force=True)  # the next run retries
    assert not RequestLog.objects.filter(pk=old_line.pk).exists()


def test_two_schedulers_run_each_rule_once_per_period() -> None:
    _log_line(timedelta(days=31))
    now = timezone.now()
    first = retention_run_all(now=now, period=timedelta(minutes=15))
    second = retention_run_all(now=now + timedelta(seconds=5), period=timedelta(minutes=15))
    assert first and second == []
    later = retention_run_all(now=now + timedelta(minutes=16), period=timedelta(minutes=15))
    assert later
    assert RetentionRun.objects.filter(rule="accounts.RequestLog").count() == 2


def test_management_command_lists_then_purges() -> None:
    _log_line(timedelta(days=31))
    out = io.StringIO()
    call_command("retention", stdout=out)
    assert "accounts.RequestLog" in out.getvalue() and "Dry run" in out.getvalue()
    assert RequestLog.objects.count() == 1
    out = io.StringIO()
    call_command("retention", "--apply", "--rule", "accounts.RequestLog", stdout=out)
    assert RequestLog.objects.count() == 0
    assert "removed 1 rows" in out.getvalue()


def test_versioned_s3_bucket_loses_every_version_of_a_purged_file(settings) -> None:
    s3, bucket = s3_bucket(settings, versioned=True, file_overwrite=True)
    key = "profile-images/versioned.jpg"
    for body in (b"v1", b"v2", b"v3"):
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    stale = UserFactory(email_verified_at=None, profile_image=key)
    User.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(days=8))
    assert len(s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]) == 3
    retention_run_all(force=True)
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    assert listing.get("Versions", []) == [] and listing.get("DeleteMarkers", []) == []
    assert not User.objects.filter(pk=stale.pk).exists()
