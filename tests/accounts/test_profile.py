"""My profile: every field editable (ACC-1), validated, email and password changes."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY

from accounts.models import AuditAction, AuditEvent, User
from accounts.services.users import PROFILE_FIELDS
from tests.accounts.helpers import link_path, login_data, mails_to
from tests.conftest import login_client
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

PROFILE = "/accounts/profile/"
EMAIL_CHANGE = "/accounts/profile/email/"
PASSWORD_CHANGE = "/accounts/profile/password/"
NEW_PASSWORD = "sapphire-meadow-kettle-88"

FULL_PROFILE = {
    "full_name": "Casey Q. Customer",
    "phone": "+353 (1) 234-5678",
    "country": "DE",
    "company_name": "Casey Photo GmbH",
    "website": "https://casey.example.org/",
    "street_address": "Hauptstraße 1",
    "city": "Berlin",
    "region": "Berlin",
    "postal_code": "10115",
    "preferred_currency": "EUR",
    "vat_id": "DE123456789",
}


def _snapshot(user: User) -> dict[str, object]:
    user.refresh_from_db()
    return {f: str(getattr(user, f)) for f in PROFILE_FIELDS}


def test_profile_page_lists_every_profile_field_ACC_1(customer_client):
    html = customer_client.get(PROFILE).content.decode()
    for field in PROFILE_FIELDS:
        assert f'name="{field}"' in html, field


def test_every_profile_field_is_editable_ACC_1(customer_client, customer):
    assert set(FULL_PROFILE) == set(PROFILE_FIELDS)

    response = customer_client.post(PROFILE, FULL_PROFILE)

    assert response.status_code == 302
    customer.refresh_from_db()
    for field, value in FULL_PROFILE.items():
        stored = getattr(customer, field)
        assert str(getattr(stored, "code", stored)) == value, field
    event = AuditEvent.objects.get(action=AuditAction.PROFILE_UPDATED, subject=customer)
    assert set(event.detail["fields"]) == set(PROFILE_FIELDS)
    # And the page shows the saved values back.
    html = customer_client.get(PROFILE).content.decode()
    assert "Casey Photo GmbH" in html
    assert "DE123456789" in html


def test_optional_fields_can_be_cleared_again_ACC_1(customer_client, customer):
    customer_client.post(PROFILE, FULL_PROFILE)
    cleared = {
        **FULL_PROFILE,
        **{f: "" for f in PROFILE_FIELDS if f not in {"full_name", "country"}},
    }
    assert customer_client.post(PROFILE, cleared).status_code == 302
    customer.refresh_from_db()
    assert customer.phone == ""
    assert customer.company_name == ""
    assert customer.preferred_currency == ""
    assert customer.vat_id == ""


def test_website_without_scheme_is_assumed_https(customer_client, customer):
    response = customer_client.post(PROFILE, {**FULL_PROFILE, "website": "casey.example.org"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.website == "https://casey.example.org"


def test_unchanged_profile_writes_no_audit_row(customer_client, customer):
    customer_client.post(PROFILE, FULL_PROFILE)
    before = AuditEvent.objects.count()
    assert customer_client.post(PROFILE, FULL_PROFILE).status_code == 302
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("country", "XX"),
        ("country", "Germany"),
        ("preferred_currency", "XYZ"),
        ("preferred_currency", "eur"),
        ("phone", "call me maybe"),
        ("phone", "12"),
        ("phone", "+1 555 <script>"),
        ("website", "javascript:alert(1)"),
        ("website", "not a url"),
        ("full_name", ""),
        ("full_name", "x" * 151),
        ("company_name", "x" * 151),
        ("street_address", "x" * 201),
        ("city", "x" * 101),
        ("region", "x" * 101),
        ("postal_code", "x" * 21),
        ("vat_id", "x" * 33),
        ("phone", "1" * 33),
        ("website", "https://example.org/" + "a" * 200),
    ],
)
def test_invalid_profile_input_is_refused_and_nothing_saved(
    customer_client, customer, field, value
):
    before = _snapshot(customer)
    audit_before = AuditEvent.objects.count()

    response = customer_client.post(PROFILE, {**FULL_PROFILE, field: value})

    assert response.status_code == 400
    assert b'class="error"' in response.content
    assert _snapshot(customer) == before
    assert AuditEvent.objects.count() == audit_before


def test_profile_needs_login(client):
    response = client.get(PROFILE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- email change ----------------------------------------------------------------------


def test_email_change_with_wrong_password_is_refused(customer_client, customer, mailoutbox):
    response = customer_client.post(
        EMAIL_CHANGE, {"new_email": "casey.new@example.com", "password": "not-my-password-1"}
    )

    assert response.status_code == 400
    assert b"password is not correct" in response.content
    customer.refresh_from_db()
    assert customer.pending_email == ""
    assert customer.email == "casey@example.com"
    assert mailoutbox == []


def test_email_change_to_an_address_in_use_is_refused(customer_client, customer, other_customer):
    response = customer_client.post(
        EMAIL_CHANGE, {"new_email": " OLIVE@example.com", "password": PASSWORD}
    )
    assert response.status_code == 400
    customer.refresh_from_db()
    assert customer.pending_email == ""


def test_email_change_sends_link_to_new_address_and_notice_to_old(
    customer_client, customer, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        response = customer_client.post(
            EMAIL_CHANGE, {"new_email": " Casey.New@Example.com ", "password": PASSWORD}
        )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.pending_email == "casey.new@example.com"
    assert customer.email == "casey@example.com"  # not switched until the link is opened
    (to_new,) = mails_to("casey.new@example.com")
    (to_old,) = mails_to("casey@example.com")
    assert "/accounts/verify/" in to_new.body
    assert "/accounts/verify/" not in to_old.body
    assert len(mailoutbox) == 2

    response = customer_client.get(link_path(to_new, "verify"))

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.email == "casey.new@example.com"
    assert customer.pending_email == ""
    event = AuditEvent.objects.get(action=AuditAction.EMAIL_CHANGED, subject=customer)
    assert event.detail == {"old_domain": "example.com"}
    # The same link does not work twice.
    assert customer_client.get(link_path(to_new, "verify")).status_code == 400


# --- password change -------------------------------------------------------------------


def test_password_change_keeps_this_session_and_ends_the_others(client, customer):
    here = client
    assert here.post("/accounts/login/", login_data(customer.email)).status_code == 302
    elsewhere = login_client(customer)
    assert elsewhere.get(PROFILE).status_code == 200

    response = here.post(
        PASSWORD_CHANGE,
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert here.get(PROFILE).status_code == 200
    gone = elsewhere.get(PROFILE)
    assert gone.status_code == 302
    assert gone["Location"].startswith("/accounts/login/")
    assert SESSION_KEY not in elsewhere.session
    customer.refresh_from_db()
    assert customer.check_password(NEW_PASSWORD)
    assert not customer.check_password(PASSWORD)
    assert AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGED, subject=customer).exists()


def test_password_change_with_wrong_old_password_is_refused(customer_client, customer):
    response = customer_client.post(
        PASSWORD_CHANGE,
        {
            "old_password": "wrong-password-00",
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 400
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


def test_password_change_to_a_weak_password_is_refused(customer_client, customer):
    response = customer_client.post(
        PASSWORD_CHANGE,
        {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
    )
    assert response.status_code == 400
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)
