"""Personal API tokens: sign in like the web login (lockout, 2FA), list, revoke, expiry (ACC-3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, AuditAction, AuditEvent
from tests.accounts.helpers import enable_2fa, totp_now, wrong_totp
from tests.api.conftest import api_client, token_for
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/auth/tokens/"
ME = "/api/v1/me/"


def _create(client: APIClient, email: str, password: str = PASSWORD, **extra: str):
    return client.post(TOKENS, {"email": email, "password": password, **extra}, format="json")


def _error(response) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return str(body["error"]["code"])


def _bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def test_sign_in_returns_a_token_shown_once_that_works_ACC_3(anon_api, customer) -> None:
    response = _create(anon_api, " CASEY@example.com ", name="laptop script")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "token_key", "name", "created", "expiry", "last_used_at"}
    assert body["token"].startswith(body["token_key"]) and body["name"] == "laptop script"
    row = ApiToken.objects.get(token_key=body["token_key"])
    # Only the digest is stored (ACC-2 for tokens): the secret is nowhere in the row.
    assert body["token"] not in {row.digest, row.token_key} and row.user == customer
    assert row.expiry is not None
    assert abs((row.expiry - timezone.now()) - timedelta(days=30)) < timedelta(minutes=1)
    assert AuditEvent.objects.filter(
        action=AuditAction.API_TOKEN_CREATED, subject=customer, detail__token_key=row.token_key
    ).exists()
    me = _bearer(body["token"]).get(ME)
    assert me.status_code == 200 and me.json()["email"] == customer.email
    listed = _bearer(body["token"]).get(TOKENS).json()
    assert [t["token_key"] for t in listed] == [row.token_key]
    assert "token" not in listed[0] and listed[0]["last_used_at"] is not None


def test_unknown_address_and_wrong_password_get_the_same_answer_ACC_3(anon_api, customer):
    wrong = _create(anon_api, customer.email, "not-the-password-1")
    unknown = _create(anon_api, "nobody@example.com", "not-the-password-1")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert _error(wrong) == "invalid_credentials"
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED, subject=customer).exists()
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED, subject=None).exists()
    assert not ApiToken.objects.exists()


def test_inactive_account_gets_no_token(anon_api, customer) -> None:
    customer.is_active = False
    customer.save(update_fields=["is_active"])
    response = _create(anon_api, customer.email)
    assert response.status_code == 401 and _error(response) == "invalid_credentials"
    assert not ApiToken.objects.exists()


def test_five_failures_lock_out_as_on_the_web_even_the_right_password_ACC_3(
    anon_api, customer, settings
) -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    statuses = [_create(anon_api, customer.email, "wrong-password-9").status_code for _ in range(5)]
    assert statuses == [401] * 4 + [429]
    response = _create(anon_api, customer.email)
    assert response.status_code == 429 and _error(response) == "locked_out"
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith("application/json")  # not the HTML page
    assert AuditEvent.objects.filter(action=AuditAction.LOCKOUT, subject=customer).exists()
    assert not ApiToken.objects.exists()
    # The web login shares the lockout: same account, same address.
    web = Client().post("/accounts/login/", {"email": customer.email, "password": PASSWORD})
    assert web.status_code == 429


def test_a_success_resets_earlier_failures_as_the_web_login_does(anon_api, customer) -> None:
    for _ in range(4):
        _create(anon_api, customer.email, "wrong-password-9")
    assert _create(anon_api, customer.email).status_code == 201
    for _ in range(4):
        _create(anon_api, customer.email, "wrong-password-9")
    assert _create(anon_api, customer.email).status_code == 201


def test_two_factor_needs_a_fresh_code_every_time_ACC_3(anon_api, customer) -> None:
    device, recovery = enable_2fa(customer)
    missing = _create(anon_api, customer.email)
    assert missing.status_code == 401 and _error(missing) == "second_factor_required"
    assert _create(anon_api, customer.email, otp_code=totp_now(device)).status_code == 201
    wrong = _create(anon_api, customer.email, otp_code=wrong_totp(device))
    assert wrong.status_code == 401 and _error(wrong) == "second_factor_invalid"
    assert AuditEvent.objects.filter(
        action=AuditAction.LOGIN_FAILED, subject=customer, detail__step="second_factor"
    ).exists()
    assert ApiToken.objects.filter(user=customer).count() == 1
    # A recovery code works once, as on the web.
    assert _create(anon_api, customer.email, otp_code=recovery[0]).status_code == 201
    again = _create(anon_api, customer.email, otp_code=recovery[0])
    assert again.status_code == 401 and _error(again) == "second_factor_invalid"


def test_wrong_codes_count_towards_the_lockout_ACC_3(anon_api, customer) -> None:
    device, _codes = enable_2fa(customer)
    statuses = [
        _create(anon_api, customer.email, otp_code=wrong_totp(device)).status_code for _ in range(5)
    ]
    assert statuses == [401] * 4 + [429]
    assert _create(anon_api, customer.email, otp_code=totp_now(device)).status_code == 429


def test_a_session_with_2fa_does_not_replace_the_fresh_code(customer) -> None:
    from tests.conftest import login_client

    enable_2fa(customer)
    client = login_client(customer, verified=True)
    response = client.post(
        TOKENS,
        {"email": customer.email, "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == (
        "second_factor_required"
    )


def test_token_limit_per_user_is_refused_clearly(anon_api, customer, settings) -> None:
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_LIMIT_PER_USER": 2}
    assert _create(anon_api, customer.email).status_code == 201
    assert _create(anon_api, customer.email).status_code == 201
    refused = _create(anon_api, customer.email)
    assert refused.status_code == 409 and _error(refused) == "token_limit"
    assert "Revoke one" in refused.json()["error"]["message"]
    assert ApiToken.objects.filter(user=customer).count() == 2
    # An expired token does not count against the limit.
    ApiToken.objects.filter(user=customer).update(expiry=timezone.now() - timedelta(seconds=1))
    assert _create(anon_api, customer.email).status_code == 201


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"email": "not-an-address", "password": "x"},
        {"email": "casey@example.com"},
        {"email": ["casey@example.com"], "password": {"a": 1}},
        {"email": "casey@example.com", "password": "x", "name": "n" * 101},
    ],
)
def test_bad_input_is_400_with_fields(anon_api, customer, payload) -> None:
    response = anon_api.post(TOKENS, payload, format="json")
    assert response.status_code == 400 and _error(response) == "invalid"
    assert response.json()["error"]["fields"]


def test_malformed_body_is_400_not_500(anon_api) -> None:
    response = anon_api.post(TOKENS, "{not json", content_type="application/json")
    assert response.status_code == 400 and _error(response) == "malformed_request"


def test_list_shows_only_own_live_tokens_newest_first(customer, other_customer) -> None:
    client = api_client(customer)
    token_for(customer, "second")
    token_for(other_customer, "not mine")
    expired, _secret = ApiToken.objects.create(user=customer, name="old")
    ApiToken.objects.filter(pk=expired.pk).update(expiry=timezone.now() - timedelta(days=1))
    names = [t["name"] for t in client.get(TOKENS).json()]
    assert names == ["second", "test"]


def test_list_needs_auth(anon_api) -> None:
    response = anon_api.get(TOKENS)
    assert response.status_code == 401 and _error(response) == "not_authenticated"


def test_revoke_one_of_mine_and_not_another_customers(customer, other_customer) -> None:
    client = api_client(customer)
    extra, secret = ApiToken.objects.create(user=customer, name="ci")
    others, _ = ApiToken.objects.create(user=other_customer, name="theirs")
    assert client.delete(f"{TOKENS}{others.token_key}/").status_code == 404
    assert ApiToken.objects.filter(pk=others.pk).exists()
    assert client.delete(f"{TOKENS}{extra.token_key}/").status_code == 204
    assert not ApiToken.objects.filter(pk=extra.pk).exists()
    assert AuditEvent.objects.filter(
        action=AuditAction.API_TOKEN_REVOKED, subject=customer, detail__token_key=extra.token_key
    ).exists()
    assert _bearer(secret).get(ME).status_code == 401
    assert client.delete(f"{TOKENS}{extra.token_key}/").status_code == 404


def test_revoke_current_signs_this_token_out(customer) -> None:
    secret = token_for(customer, "phone")
    other = token_for(customer, "laptop")
    client = _bearer(secret)
    assert client.delete(f"{TOKENS}current/").status_code == 204
    assert client.get(ME).status_code == 401
    assert _bearer(other).get(ME).status_code == 200


def test_revoke_current_with_a_session_is_refused(customer) -> None:
    from tests.conftest import login_client

    response = login_client(customer).delete(f"{TOKENS}current/")
    # Session requests need CSRF; Django's test client skips the check.
    assert response.status_code == 400 and response.json()["error"]["code"] == "not_token_auth"


def test_expired_token_is_refused_and_deleted(customer) -> None:
    secret = token_for(customer)
    ApiToken.objects.filter(user=customer).update(expiry=timezone.now() - timedelta(seconds=1))
    response = _bearer(secret).get(ME)
    assert response.status_code == 401 and _error(response) == "authentication_failed"
    assert not ApiToken.objects.filter(user=customer).exists()


def test_token_of_a_deactivated_user_stops_working(customer) -> None:
    secret = token_for(customer)
    customer.is_active = False
    customer.save(update_fields=["is_active"])
    assert _bearer(secret).get(ME).status_code == 401


def test_sign_in_is_throttled_per_address_with_retry_after(anon_api, settings) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "login": "2/min",
        },
    }
    addr = "198.18.7.77"
    # Throttle counters live in the shared cache: start this address from zero.
    cache.delete(f"throttle_login_ip:{addr}")
    UserFactory(email="t1@example.com")
    statuses = [
        anon_api.post(
            TOKENS,
            {"email": "t1@example.com", "password": "wrong-password-9"},
            format="json",
            REMOTE_ADDR=addr,
        ).status_code
        for _ in range(3)
    ]
    assert statuses[:2] == [401, 401]
    assert statuses[2] == 429
    last = anon_api.post(
        TOKENS, {"email": "t1@example.com", "password": PASSWORD}, format="json", REMOTE_ADDR=addr
    )
    assert last.status_code == 429 and _error(last) == "throttled"
    assert int(last["Retry-After"]) > 0


def test_a_wrong_secret_with_a_real_prefix_is_refused(customer) -> None:
    """The non-secret prefix finds the row; only the digest of the whole secret opens it."""
    _row, secret = ApiToken.objects.create(user=customer, name="x")
    forged = secret[:15] + ("0" if secret[15] != "0" else "1") + secret[16:]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {forged}")
    assert client.get("/api/v1/me/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert client.get("/api/v1/me/").status_code == 200


def test_a_request_costs_one_query_for_the_token_and_its_user(
    customer, django_assert_num_queries
) -> None:
    _row, secret = ApiToken.objects.create(user=customer, name="x")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    client.get("/api/v1/me/")  # first use records last_used_at
    with django_assert_num_queries(1):  # the token joined with its user; /me/ needs no more
        assert client.get("/api/v1/me/").status_code == 200
