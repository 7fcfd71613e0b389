"""Sign-up: only what is needed (ACC-1), nobody under 13 (ACC-5), one account per address."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import identify_hasher

from accounts.models import AuditAction, AuditEvent, User
from tests.accounts.helpers import STRONG_PASSWORD, link_path, mails_to, signup_data

pytestmark = pytest.mark.django_db

SIGNUP = "/accounts/signup/"


def test_signup_creates_unverified_user_with_age_confirmation_only_ACC_1_ACC_5(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(SIGNUP, signup_data(email="  New.Person@Example.COM "))

    assert response.status_code == 302
    assert response["Location"] == "/accounts/signup/done/"
    user = User.objects.get()
    assert user.email == "new.person@example.com"
    assert user.full_name == "New Person"
    assert user.country.code == "IE"
    assert user.email_verified_at is None
    assert not user.is_email_verified
    assert user.age_confirmed_at is not None
    assert not user.is_staff
    assert not user.is_superuser
    # ACC-5: only the fact "13 or older", never a birth date.
    field_names = {f.name for f in User._meta.get_fields()}
    assert not {"birth_date", "date_of_birth", "birthday", "age"} & field_names
    # ACC-2: the password is an Argon2 hash, not the password.
    assert identify_hasher(user.password).algorithm == "argon2"
    assert STRONG_PASSWORD not in user.password
    assert AuditEvent.objects.filter(action=AuditAction.SIGNUP, subject=user).count() == 1


def test_signup_sends_verification_email_with_link(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(SIGNUP, signup_data())

    sent = mails_to("new.person@example.com")
    assert len(sent) == 1
    path = link_path(sent[0], "verify")
    assert path.startswith("/accounts/verify/")
    assert "New Person" in sent[0].body


def test_under_13_is_refused_and_nothing_stored_ACC_5(client, django_capture_on_commit_callbacks):
    before = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            SIGNUP, signup_data(email="kid@example.com", full_name="Kid Name", age="under_13")
        )

    assert response.status_code == 403
    assert b"13 or older" in response.content
    assert not User.objects.exists()
    assert AuditEvent.objects.count() == before
    assert not any("kid" in str(e.detail).lower() for e in AuditEvent.objects.all())
    assert callbacks == []
    assert mails_to("kid@example.com") == []
    # Nothing typed in is echoed back or kept in the session.
    assert b"kid@example.com" not in response.content
    assert b"Kid Name" not in response.content
    assert "kid@example.com" not in str(dict(client.session))


def test_under_13_is_refused_even_when_the_rest_of_the_form_is_invalid_ACC_5(client):
    response = client.post(SIGNUP, {"email": "not-an-email", "age": "under_13"})
    assert response.status_code == 403
    assert not User.objects.exists()


def test_age_question_is_required(client):
    data = signup_data()
    del data["age"]
    response = client.post(SIGNUP, data)
    assert response.status_code == 400
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "variant", ["CASEY@example.com", "  casey@EXAMPLE.com  ", "Casey@Example.Com"]
)
def test_duplicate_email_in_other_case_or_whitespace_is_refused(client, customer, variant):
    response = client.post(SIGNUP, signup_data(email=variant))

    assert response.status_code == 400
    assert b"already exists" in response.content
    assert User.objects.filter(email__iexact="casey@example.com").count() == 1


def test_duplicate_racing_past_the_form_is_refused_by_the_service(customer):
    """The service (and the database's case-insensitive constraint) refuse a second account."""
    from accounts.services.users import AccountError, user_register

    with pytest.raises(AccountError):
        user_register(
            email=" CASEY@example.com",
            password=STRONG_PASSWORD,
            full_name="X",
            country="IE",
            ip_address=None,
        )
    assert User.objects.filter(email__iexact="casey@example.com").count() == 1


def test_mismatched_passwords_are_refused(client):
    response = client.post(SIGNUP, signup_data(password_confirm="something-else-entirely-1"))
    assert response.status_code == 400
    assert b"do not match" in response.content
    assert not User.objects.exists()


def test_weak_password_is_refused(client):
    response = client.post(SIGNUP, signup_data(password="password", password_confirm="password"))
    assert response.status_code == 400
    assert not User.objects.exists()


def test_logged_in_user_is_sent_to_profile(customer_client):
    response = customer_client.get(SIGNUP)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/profile/"
