"""My profile > API tokens: list, create with a fresh second factor, revoke (ACC-3)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken, AuditAction, AuditEvent
from tests.accounts.helpers import enable_2fa, totp_now, wrong_totp
from tests.conftest import login_client
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

PAGE = "/accounts/profile/tokens/"


def _secret(html: str) -> str:
    match = re.search(r'<code id="token-secret">([^<]+)</code>', html)
    assert match, "no secret on the page"
    return match.group(1)


def _works(secret: str) -> bool:
    return Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {secret}").status_code == 200


def test_page_needs_login() -> None:
    response = Client().get(PAGE)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_profile_links_the_tokens_page(customer_client) -> None:
    assert b'href="/accounts/profile/tokens/"' in customer_client.get("/accounts/profile/").content


def test_create_shows_the_secret_once_then_lists_it(customer, customer_client) -> None:
    response = customer_client.post(PAGE, {"password": PASSWORD, "name": "backup script"})
    assert response.status_code == 200
    html = response.content.decode()
    secret = _secret(html)
    assert "will not be shown again" in html
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    token = ApiToken.objects.get(user=customer)
    assert token.name == "backup script" and secret.startswith(token.token_key)
    assert AuditEvent.objects.filter(action=AuditAction.API_TOKEN_CREATED, subject=customer)
    assert _works(secret)

    page = customer_client.get(PAGE).content.decode()
    assert secret not in page and f"{token.token_key}…" in page and "backup script" in page


def test_list_has_only_my_live_tokens(customer, other_customer, customer_client) -> None:
    ApiToken.objects.create(user=customer, name="mine")
    ApiToken.objects.create(user=other_customer, name="theirs")
    old, _ = ApiToken.objects.create(user=customer, name="expired one")
    ApiToken.objects.filter(pk=old.pk).update(expiry=timezone.now() - timedelta(days=1))
    html = customer_client.get(PAGE).content.decode()
    assert "mine" in html and "theirs" not in html and "expired one" not in html


def test_with_2fa_a_fresh_code_is_needed_even_after_a_2fa_login_ACC_3(customer) -> None:
    device, _codes = enable_2fa(customer)
    client = login_client(customer, verified=True)
    page = client.get(PAGE).content.decode()
    assert 'name="code"' in page
    missing = client.post(PAGE, {"password": PASSWORD, "name": "x"})
    assert missing.status_code == 400 and not ApiToken.objects.exists()
    wrong = client.post(PAGE, {"password": PASSWORD, "name": "x", "code": wrong_totp(device)})
    assert wrong.status_code == 400 and b"That code is not right" in wrong.content
    assert not ApiToken.objects.exists()


def test_with_2fa_a_current_code_makes_the_token(customer) -> None:
    device, _codes = enable_2fa(customer)
    client = login_client(customer, verified=True)
    response = client.post(PAGE, {"password": PASSWORD, "name": "ci", "code": totp_now(device)})
    assert response.status_code == 200 and _works(_secret(response.content.decode()))


def test_revoke_mine_but_not_another_customers(customer, other_customer, customer_client):
    mine, secret = ApiToken.objects.create(user=customer, name="mine")
    theirs, their_secret = ApiToken.objects.create(user=other_customer, name="theirs")
    assert customer_client.get(f"{PAGE}{mine.token_key}/revoke/").status_code == 405
    assert customer_client.post(f"{PAGE}{theirs.token_key}/revoke/").status_code == 404
    assert _works(their_secret)
    response = customer_client.post(f"{PAGE}{mine.token_key}/revoke/")
    assert response.status_code == 302 and response["Location"] == PAGE
    assert not _works(secret)
    assert AuditEvent.objects.filter(action=AuditAction.API_TOKEN_REVOKED, subject=customer)


def test_revoke_needs_csrf(customer) -> None:
    mine, secret = ApiToken.objects.create(user=customer, name="mine")
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    assert client.post(f"{PAGE}{mine.token_key}/revoke/").status_code == 403
    assert _works(secret)


def test_limit_is_refused_with_a_message(customer, customer_client, settings) -> None:
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_LIMIT_PER_USER": 1}
    assert customer_client.post(PAGE, {"password": PASSWORD, "name": "one"}).status_code == 200
    refused = customer_client.post(PAGE, {"password": PASSWORD, "name": "two"})
    assert refused.status_code == 400 and b"the most allowed" in refused.content
    assert ApiToken.objects.filter(user=customer).count() == 1


def test_name_too_long_is_400(customer_client) -> None:
    assert customer_client.post(PAGE, {"password": PASSWORD, "name": "n" * 101}).status_code == 400
    assert not ApiToken.objects.exists()


def test_page_has_no_inline_script_or_style(customer_client) -> None:
    html = customer_client.post(PAGE, {"password": PASSWORD, "name": "x"}).content.decode()
    assert "<script>" not in html and " style=" not in html and "<style" not in html


def test_a_token_needs_the_password_again_ACC_3(customer, customer_client) -> None:
    """A hijacked session alone cannot mint a credential that outlives it."""
    missing = customer_client.post(PAGE, {"name": "x"})
    wrong = customer_client.post(PAGE, {"name": "x", "password": "not-it"})
    assert missing.status_code == 400 and wrong.status_code == 400
    assert "That password is not right." in wrong.content.decode()
    assert not ApiToken.objects.filter(user=customer).exists()


def test_a_locked_out_account_gets_no_token_even_with_the_right_answers_ACC_3(
    customer, settings
) -> None:
    device, _codes = enable_2fa(customer)
    client = login_client(customer, verified=True)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(PAGE, {"name": "x", "password": PASSWORD, "code": wrong_totp(device)})
    locked = client.post(PAGE, {"name": "x", "password": PASSWORD, "code": totp_now(device)})
    assert locked.status_code == 429
    assert not ApiToken.objects.filter(user=customer).exists()


def test_changing_the_password_ends_every_api_token_ACC_3(customer, customer_client) -> None:
    _row, secret = ApiToken.objects.create(user=customer, name="old laptop")
    response = customer_client.post(
        "/accounts/profile/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "An0ther-long-pass!",
            "new_password2": "An0ther-long-pass!",
        },
    )
    assert response.status_code == 302
    assert not ApiToken.objects.filter(user=customer).exists()
    api = Client()
    assert api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {secret}").status_code == 401
    audit = AuditEvent.objects.filter(action=AuditAction.API_TOKEN_REVOKED).get()
    assert audit.detail == {"tokens": 1, "why": "password changed"}
