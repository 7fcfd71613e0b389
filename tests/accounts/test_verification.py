"""Email verification links, and the purge of accounts never verified."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts import tasks
from accounts.models import AuditAction, AuditEvent, Notification, RecoveryCode, User
from accounts.services.audit import audit_log_write
from accounts.tokens import _SALT
from tests.accounts.helpers import link_path, mails_to, resign_in_past, signup_data
from tests.factories import NotificationFactory, UserFactory

pytestmark = pytest.mark.django_db

EMAIL = "new.person@example.com"


@pytest.fixture
def verify_path(client, django_capture_on_commit_callbacks) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/accounts/signup/", signup_data(email=EMAIL)).status_code == 302
    (message,) = mails_to(EMAIL)
    return link_path(message, "verify")


def _token(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def test_link_from_email_verifies_the_account(client, verify_path):
    response = client.get(verify_path)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    user = User.objects.get(email=EMAIL)
    assert user.email_verified_at is not None
    assert AuditEvent.objects.filter(action=AuditAction.EMAIL_VERIFIED, subject=user).exists()


def test_reused_link_is_refused_as_already_used(client, verify_path):
    assert client.get(verify_path).status_code == 302
    verified_at = User.objects.get(email=EMAIL).email_verified_at

    response = client.get(verify_path)

    assert response.status_code == 400
    assert b"already" in response.content
    assert b"used" in response.content
    assert User.objects.get(email=EMAIL).email_verified_at == verified_at


def test_expired_link_is_refused(client, verify_path, settings):
    settings.EMAIL_VERIFICATION_MAX_AGE = 60
    old = resign_in_past(_token(verify_path), _SALT, seconds_ago=120)

    response = client.get(f"/accounts/verify/{old}/")

    assert response.status_code == 400
    assert b"expired" in response.content
    assert User.objects.get(email=EMAIL).email_verified_at is None


def test_link_past_the_default_lifetime_is_refused(client, verify_path, settings):
    old = resign_in_past(
        _token(verify_path), _SALT, seconds_ago=settings.EMAIL_VERIFICATION_MAX_AGE + 60
    )
    assert client.get(f"/accounts/verify/{old}/").status_code == 400
    assert User.objects.get(email=EMAIL).email_verified_at is None


def test_recently_signed_link_still_works(client, verify_path, settings):
    """Control for the two tests above: re-signing alone does not break a link."""
    settings.EMAIL_VERIFICATION_MAX_AGE = 60
    recent = resign_in_past(_token(verify_path), _SALT, seconds_ago=10)
    assert client.get(f"/accounts/verify/{recent}/").status_code == 302
    assert User.objects.get(email=EMAIL).email_verified_at is not None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "x" + t[1:],
        lambda t: t.split(":")[0],
        lambda t: "garbage",
    ],
)
def test_tampered_link_is_refused(client, verify_path, tamper):
    token = _token(verify_path)
    response = client.get(f"/accounts/verify/{tamper(token)}/")
    assert response.status_code == 400
    assert b"not valid" in response.content
    assert User.objects.get(email=EMAIL).email_verified_at is None


def test_link_for_another_user_id_with_valid_signature_is_refused(client, customer):
    from django.core import signing

    forged = signing.dumps({"u": customer.pk, "e": customer.email, "s": "0" * 16}, salt=_SALT)
    assert client.get(f"/accounts/verify/{forged}/").status_code == 400


def test_resend_verification_sends_a_new_link(
    client, verify_path, django_capture_on_commit_callbacks
):
    user = User.objects.get(email=EMAIL)
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/accounts/profile/verify/resend/").status_code == 302
    assert len(mails_to(EMAIL)) == 2
    assert client.get(link_path(mails_to(EMAIL)[-1], "verify")).status_code == 302
    assert User.objects.get(email=EMAIL).email_verified_at is not None


def _age(user: User, days: int) -> None:
    User.objects.filter(pk=user.pk).update(created_at=timezone.now() - timedelta(days=days))


def test_unverified_accounts_older_than_7_days_are_purged():
    stale = UserFactory(email="stale@example.com", email_verified_at=None)
    fresh = UserFactory(email="fresh@example.com", email_verified_at=None)
    old_verified = UserFactory(email="verified@example.com")
    old_staff = UserFactory(email="staff@example.com", email_verified_at=None, is_staff=True)
    _age(stale, 8)
    _age(fresh, 6)
    _age(old_verified, 30)
    _age(old_staff, 30)
    NotificationFactory(user=stale)
    RecoveryCode.objects.create(user=stale, code_hash="x" * 64)

    removed = tasks.purge_unverified_accounts.delay().get()

    assert removed == 1
    assert not User.objects.filter(pk=stale.pk).exists()
    assert set(User.objects.values_list("email", flat=True)) == {
        "fresh@example.com",
        "verified@example.com",
        "staff@example.com",
    }
    assert not Notification.objects.filter(user_id=stale.pk).exists()
    assert not RecoveryCode.objects.filter(user_id=stale.pk).exists()


def test_purge_works_when_the_user_has_audit_rows():
    """AuditEvent FKs are SET_NULL and its queryset refuses update(): the purge must not raise."""
    stale = UserFactory(email="stale@example.com", email_verified_at=None)
    audit_log_write(actor=stale, action=AuditAction.SIGNUP, subject=stale, ip_address="10.0.0.1")
    audit_log_write(actor=None, action=AuditAction.LOGIN_FAILED, subject=stale)
    _age(stale, 8)

    assert tasks.purge_unverified_accounts() == 1

    assert not User.objects.filter(pk=stale.pk).exists()
    kept = AuditEvent.objects.filter(action__in=[AuditAction.SIGNUP, AuditAction.LOGIN_FAILED])
    assert kept.count() == 2
    assert all(e.actor_id is None and e.subject_id is None for e in kept)


def test_purge_deletes_the_stored_profile_image():
    stale = UserFactory(email="stale@example.com", email_verified_at=None)
    name = default_storage.save("profile-images/abc.jpg", ContentFile(b"not really a jpeg"))
    User.objects.filter(pk=stale.pk).update(profile_image=name)
    _age(stale, 8)

    assert tasks.purge_unverified_accounts() == 1
    assert not default_storage.exists(name)


def test_purge_is_safe_to_run_twice():
    stale = UserFactory(email_verified_at=None)
    _age(stale, 8)
    assert tasks.purge_unverified_accounts() == 1
    assert tasks.purge_unverified_accounts() == 0
