"""The staff admin: second factor required, no password hashes, no self-promotion, audited."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group

from accounts import roles
from accounts.models import AuditAction, AuditEvent, User
from accounts.services.audit import audit_log_write
from tests.accounts.helpers import enable_2fa
from tests.conftest import login_client

pytestmark = pytest.mark.django_db

ADMIN = "/admin/"


def _change_url(user: User) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def _user_form(user: User, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "email": user.email,
        "full_name": user.full_name,
        "phone": user.phone,
        "country": user.country.code,
        "company_name": user.company_name,
        "website": user.website,
        "street_address": user.street_address,
        "city": user.city,
        "region": user.region,
        "postal_code": user.postal_code,
        "preferred_currency": user.preferred_currency,
        "vat_id": user.vat_id,
        "is_active": "on",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def test_staff_without_2fa_are_sent_to_2fa_setup(support):
    client = login_client(support)

    response = client.get(ADMIN, follow=True)

    assert response.redirect_chain[-1][0] == "/accounts/2fa/"
    assert response.status_code == 200
    assert b"Staff must turn on two-factor authentication" in response.content
    assert b'href="/accounts/2fa/setup/"' in response.content


def test_staff_with_2fa_but_unverified_session_are_asked_for_a_code(support):
    enable_2fa(support)
    client = login_client(support)

    response = client.get(ADMIN)
    response = client.get(response["Location"])

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/2fa/step-up/")


def test_staff_with_otp_verified_session_enter_the_admin(support):
    response = login_client(support, verified=True).get(ADMIN)
    assert response.status_code == 200
    assert b"Support and privacy" in response.content


@pytest.mark.parametrize("verified", [False, True])
def test_customers_cannot_enter_the_admin(customer, verified):
    client = login_client(customer, verified=verified)

    response = client.get(ADMIN, follow=True)

    assert response.status_code == 403
    assert b"Support and privacy" not in response.content
    assert client.get("/admin/accounts/user/", follow=True).status_code == 403


def test_anonymous_visitors_are_sent_to_the_site_login(client):
    response = client.get(ADMIN, follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert response.status_code == 200


def test_user_change_page_never_shows_the_password_hash_ACC_2(support, superuser, customer):
    for staff in (support, superuser):
        response = login_client(staff, verified=True).get(_change_url(customer))
        assert response.status_code == 200
        html = response.content.decode()
        assert customer.email in html
        assert customer.password not in html
        assert customer.password.split("$")[-1] not in html
        assert "argon2" not in html
        assert 'name="password"' not in html


def test_user_list_never_shows_password_hashes_ACC_2(support, customer):
    response = login_client(support, verified=True).get("/admin/accounts/user/")
    assert response.status_code == 200
    assert customer.email.encode() in response.content
    assert b"argon2" not in response.content


def test_support_cannot_grant_staff_rights_or_groups(support, customer):
    client = login_client(support, verified=True)
    page = client.get(_change_url(customer)).content.decode()
    for field in ("is_staff", "is_superuser", "groups", "user_permissions"):
        assert not re.search(rf'name="{field}"', page), field

    group = Group.objects.get(name=roles.PRIVACY_OFFICER)
    response = client.post(
        _change_url(customer),
        _user_form(customer, is_staff="on", is_superuser="on", groups=[group.pk]),
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert not customer.is_staff
    assert not customer.is_superuser
    assert not customer.groups.exists()


def test_support_cannot_promote_themselves(support):
    client = login_client(support, verified=True)
    group = Group.objects.get(name=roles.PRIVACY_OFFICER)
    client.post(_change_url(support), _user_form(support, is_superuser="on", groups=[group.pk]))
    support.refresh_from_db()
    assert not support.is_superuser
    assert list(support.groups.values_list("name", flat=True)) == [roles.SUPPORT]


def test_staff_edit_writes_an_audit_row(support, customer):
    client = login_client(support, verified=True)

    response = client.post(_change_url(customer), _user_form(customer, full_name="Casey Renamed"))

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.full_name == "Casey Renamed"
    event = AuditEvent.objects.get(action=AuditAction.STAFF_USER_EDIT)
    assert event.actor == support
    assert event.subject == customer
    assert event.detail == {"fields": ["full_name"]}
    assert event.ip_address == "127.0.0.1"


def test_staff_cannot_add_or_delete_users_in_the_admin(superuser, customer):
    client = login_client(superuser, verified=True)
    assert client.get("/admin/accounts/user/add/").status_code == 403
    assert (
        client.post(f"/admin/accounts/user/{customer.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert User.objects.filter(pk=customer.pk).exists()


def test_audit_log_admin_is_read_only(privacy_officer, superuser, customer):
    event = audit_log_write(
        actor=None, action=AuditAction.LOGIN_FAILED, subject=customer, ip_address="192.0.2.1"
    )
    for staff in (privacy_officer, superuser):
        client = login_client(staff, verified=True)
        listing = client.get("/admin/accounts/auditevent/")
        assert listing.status_code == 200
        assert b"192.0.2.1" in listing.content

        detail = client.get(f"/admin/accounts/auditevent/{event.pk}/change/")
        assert detail.status_code == 200
        assert b'name="_save"' not in detail.content
        assert b'name="ip_address"' not in detail.content

        assert (
            client.post(
                f"/admin/accounts/auditevent/{event.pk}/change/",
                {"action": "login", "ip_address": "192.0.2.99"},
            ).status_code
            == 403
        )
        assert client.get("/admin/accounts/auditevent/add/").status_code == 403
        assert (
            client.post(
                f"/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"}
            ).status_code
            == 403
        )
        assert client.post(
            "/admin/accounts/auditevent/",
            {
                "action": "delete_selected",
                "_selected_action": [event.pk],
                "post": "yes",
            },
        ).status_code in {200, 302}
    event.refresh_from_db()
    assert event.ip_address == "192.0.2.1"
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_support_cannot_see_the_audit_log(support):
    assert (
        login_client(support, verified=True).get("/admin/accounts/auditevent/").status_code == 403
    )


def test_audit_rows_cannot_be_updated_or_deleted(customer):
    event = audit_log_write(actor=customer, action=AuditAction.LOGIN, subject=customer)

    event.action = AuditAction.LOGOUT
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action=AuditAction.LOGOUT)
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()

    assert AuditEvent.objects.get(pk=event.pk).action == AuditAction.LOGIN


def test_admin_password_change_goes_to_the_audited_site_page(privacy_officer):
    from tests.conftest import login_client

    response = login_client(privacy_officer, verified=True).get("/admin/password_change/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/security/"
