"""Password reset: no account enumeration, single-use links, tamper-proof."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import AuditAction, AuditEvent, User
from tests.accounts.helpers import link_path, login_data, mails_to
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

RESET = "/accounts/password-reset/"
NEW_PASSWORD = "copper-lighthouse-sparrow-31"


def _page(url: str) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", Client().get(url).content)


def _request_reset(client: Client, email: str, capture) -> object:
    with capture(execute=True):
        return client.post(RESET, {"email": email})


def test_known_and_unknown_emails_get_the_same_answer(
    customer, mailoutbox, django_capture_on_commit_callbacks
):
    known = _request_reset(Client(), " CASEY@example.com ", django_capture_on_commit_callbacks)
    unknown = _request_reset(Client(), "nobody@example.com", django_capture_on_commit_callbacks)

    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == "/accounts/password-reset/sent/"
    # Compared without the per-browser CSRF token of the cookie banner's form.
    assert _page(known["Location"]) == _page(unknown["Location"])
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["casey@example.com"]
    assert mails_to("nobody@example.com") == []


def test_no_reset_mail_for_inactive_accounts(
    customer, mailoutbox, django_capture_on_commit_callbacks
):
    User.objects.filter(pk=customer.pk).update(is_active=False)
    response = _request_reset(Client(), customer.email, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert mailoutbox == []


def _reset_link(customer: User, client: Client, capture) -> str:
    _request_reset(client, customer.email, capture)
    (message,) = mails_to(customer.email)
    return link_path(message, "reset")


def test_emailed_link_resets_the_password_once(
    client, customer, django_capture_on_commit_callbacks
):
    link = _reset_link(customer, client, django_capture_on_commit_callbacks)

    response = client.get(link)
    assert response.status_code == 302
    form_url = response["Location"]
    assert client.get(form_url).status_code == 200
    response = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/reset/done/"
    customer.refresh_from_db()
    assert customer.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(action=AuditAction.PASSWORD_RESET, subject=customer).exists()
    assert (
        Client().post("/accounts/login/", login_data(customer.email, NEW_PASSWORD)).status_code
        == 302
    )

    # The link has done its job: a second use is refused.
    again = Client()
    response = again.get(link, follow=True)
    assert response.status_code == 400
    assert (
        again.post(
            response.request["PATH_INFO"],
            {
                "new_password1": "another-new-password-5",
                "new_password2": "another-new-password-5",
            },
        ).status_code
        == 400
    )
    customer.refresh_from_db()
    assert customer.check_password(NEW_PASSWORD)


def test_reset_with_mismatched_passwords_is_refused(
    client, customer, django_capture_on_commit_callbacks
):
    link = _reset_link(customer, client, django_capture_on_commit_callbacks)
    form_url = client.get(link)["Location"]
    response = client.post(
        form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD + "x"}
    )
    assert response.status_code == 400
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


@pytest.mark.parametrize("tamper", ["token", "uid", "both"])
def test_tampered_link_is_refused(
    client, customer, other_customer, tamper, django_capture_on_commit_callbacks
):
    link = _reset_link(customer, client, django_capture_on_commit_callbacks)
    _, _, _, uid, token, _ = link.split("/")
    if tamper in {"token", "both"}:
        token = token[:-1] + ("a" if token[-1] != "a" else "b")
    if tamper in {"uid", "both"}:
        from django.utils.encoding import force_bytes
        from django.utils.http import urlsafe_base64_encode

        uid = urlsafe_base64_encode(force_bytes(other_customer.pk))

    response = client.get(f"/accounts/reset/{uid}/{token}/", follow=True)

    assert response.status_code == 400
    customer.refresh_from_db()
    other_customer.refresh_from_db()
    assert customer.check_password(PASSWORD)
    assert other_customer.check_password(PASSWORD)


@pytest.mark.parametrize("uid", ["!!!", "Zm9v", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA"])
def test_garbage_reset_links_are_refused(client, uid):
    assert client.get(f"/accounts/reset/{uid}/abc-123/").status_code == 400
