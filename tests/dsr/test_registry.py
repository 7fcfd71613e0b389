"""The personal-data registry and its system check (ACC-6, TRN-1)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.apps import apps
from django.core import checks

from dsr.registry import registry

ROOT = Path(__file__).resolve().parents[2]


def _probe_project(tmp_path: Path, models_py: str, privacy_py: str | None) -> Path:
    app = tmp_path / "probeapp"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(textwrap.dedent(models_py))
    if privacy_py is not None:
        (app / "privacy.py").write_text(textwrap.dedent(privacy_py))
    (tmp_path / "probe_settings.py").write_text(
        "from config.settings import *  # noqa\nINSTALLED_APPS = [*INSTALLED_APPS, 'probeapp']\n"
    )
    return tmp_path


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "probe_settings",
        "PYTHONPATH": f"{path}{os.pathsep}{ROOT}",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


LINKED_MODEL = """
    from django.conf import settings
    from django.db import models

    class Snapshot(models.Model):
        owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
        note = models.TextField()

    class SnapshotTag(models.Model):  # linked through Snapshot: also personal
        snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE)
        label = models.CharField(max_length=20)
"""


def test_undeclared_user_linked_model_fails_check_ACC_6(tmp_path: Path) -> None:
    """ACC-6: a new model with a user link, directly or through a chain, cannot escape."""
    result = _check(_probe_project(tmp_path, LINKED_MODEL, None))
    assert result.returncode != 0
    assert "dsr.E001" in result.stderr
    assert "probeapp.Snapshot holds personal data" in result.stderr
    assert "probeapp.SnapshotTag holds personal data" in result.stderr


def test_field_marked_personal_needs_a_declaration_ACC_6(tmp_path: Path) -> None:
    models_py = """
        from django.db import models
        from common.fields import personal

        class Visitor(models.Model):
            ip = personal(models.GenericIPAddressField())
    """
    result = _check(_probe_project(tmp_path, models_py, None))
    assert result.returncode != 0
    assert "probeapp.Visitor holds personal data" in result.stderr


def test_declared_field_that_no_longer_exists_fails_check(tmp_path: Path) -> None:
    privacy_py = """
        from dsr.registry import Category, Delete, PersonalData, registry
        from probeapp.models import Snapshot, SnapshotTag

        registry.register(PersonalData(model=Snapshot, subject="owner", purpose="account",
                                       fields={"note": "content", "caption": "content"},
                                       erasure=Delete()))
        registry.register(PersonalData(model=SnapshotTag, subject="snapshot__owner",
                                       purpose="account", fields={"label": "content"},
                                       erasure=Delete()))
    """
    result = _check(_probe_project(tmp_path, LINKED_MODEL, privacy_py))
    assert result.returncode != 0
    assert "dsr.E002" in result.stderr
    assert "declares field 'caption'" in result.stderr


def test_fully_declared_app_passes_check(tmp_path: Path) -> None:
    privacy_py = """
        from dsr.registry import Delete, PersonalData, registry
        from probeapp.models import Snapshot, SnapshotTag

        registry.register(PersonalData(model=Snapshot, subject="owner", purpose="account",
                                       fields={"note": "content"}, erasure=Delete()))
        registry.register(PersonalData(model=SnapshotTag, subject="snapshot__owner",
                                       purpose="account", fields={"label": "content"},
                                       erasure=Delete()))
    """
    result = _check(_probe_project(tmp_path, LINKED_MODEL, privacy_py))
    assert result.returncode == 0, result.stderr


def test_project_itself_passes_the_registry_check() -> None:
    errors = [m for m in checks.run_checks() if m.id and m.id.startswith("dsr.")]
    assert errors == []


def test_every_user_field_is_declared_or_plumbing_ACC_6() -> None:
    from accounts.privacy import USER_FIELDS, USER_PLUMBING

    user = apps.get_model("accounts", "User")
    concrete = {f.name for f in user._meta.concrete_fields}
    assert concrete - set(USER_FIELDS) - USER_PLUMBING == set()


@pytest.mark.parametrize(
    "label",
    [
        "accounts.User",
        "accounts.Notification",
        "accounts.AuditEvent",
        "accounts.RecoveryCode",
        "accounts.RequestLog",
        "otp_totp.TOTPDevice",
        "axes.AccessAttempt",
        "axes.AccessLog",
        "axes.AccessFailureLog",
        "sessions.Session",
        "admin.LogEntry",
    ],
)
def test_accounts_app_declares_everything_it_holds(label: str) -> None:
    assert registry.get(label) is not None


def test_request_log_retention_follows_the_setting_LOG_2(settings) -> None:
    entry = registry.get("accounts.RequestLog")
    assert entry is not None and entry.retention is not None
    settings.REQUEST_LOG_RETENTION_DAYS = 14
    assert entry.retention.period().days == 14
    assert "14 days" in entry.retention.describe()


def test_request_log_retention_cannot_exceed_a_month_LOG_2() -> None:
    env = {**os.environ, "REQUEST_LOG_RETENTION_DAYS": "45"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "REQUEST_LOG_RETENTION_DAYS must be 1-31" in result.stderr


def test_registry_admin_page_for_privacy_officer(privacy_officer, support) -> None:
    from tests.conftest import login_client

    page = login_client(privacy_officer, verified=True).get("/admin/dsr/personaldatamap/")
    assert page.status_code == 200
    html = page.content.decode()
    for label in ("accounts.RequestLog", "accounts.User", "axes.AccessLog"):
        assert label in html
    assert "deleted 30 days after the request" in html
    assert (
        login_client(support, verified=True).get("/admin/dsr/personaldatamap/").status_code == 403
    )


@pytest.mark.django_db
def test_privacy_page_shows_the_enforced_retention_TRN_1(client, settings) -> None:
    """TRN-1: the page's retention numbers come from the settings the engine enforces."""
    assert "deleted after 30 days" in client.get("/privacy/").content.decode()
    settings.REQUEST_LOG_RETENTION_DAYS = 21
    html = client.get("/privacy/").content.decode()
    assert "deleted after 21 days" in html and "Deleted 21 days after the request" in html


@pytest.mark.django_db  # the page reads the processing register
def test_image_rules_are_declared_and_shown_on_the_privacy_page_IMG_4_TRN_1(
    client, settings
) -> None:
    """IMG-4: originals, results and previews each have a rule; the page shows their limits."""
    from datetime import timedelta

    from dsr.registry import registry

    photo = registry.get("images.Photo")
    result = registry.get("images.Result")
    assert photo is not None and result is not None
    assert photo.file_fields == ("file", "upload")
    assert {r.name for r in result.rules} == {"delivered", "undelivered", "guest_preview"}
    settings.ORIGINALS_RETENTION_HOURS = 24
    settings.RETENTION_INTERVAL_MINUTES = 15
    (rule,) = photo.rules
    # Starts one sweep interval early, so files are gone *at the latest* at the limit.
    assert rule.period() == timedelta(hours=24) - timedelta(minutes=15)
    page = client.get("/privacy/").content.decode()
    assert "23.75 hours after the order&#x27;s last edit" in page or (
        "23.75 hours after the order's last edit" in page
    )


def test_several_rules_on_one_model_need_distinct_names() -> None:
    from datetime import timedelta

    from accounts.models import DailyUsage
    from dsr.registry import Delete, PersonalData, Registry, Retention

    rules = (
        Retention(clock="day", period=lambda: timedelta(days=1)),
        Retention(clock="day", period=lambda: timedelta(days=2)),
    )
    entry = PersonalData(
        model=DailyUsage,
        purpose="operations",
        fields={},
        erasure=Delete(),
        subject_note="none",
        retention=rules,
    )
    with pytest.raises(ValueError, match="distinct names"):
        Registry().register(entry)
