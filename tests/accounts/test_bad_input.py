"""Hostile or malformed input is a 4xx, never a 500, and never stored."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from tests.accounts.helpers import enable_2fa, signup_data
from tests.conftest import login_client
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

MALFORMED_EMAILS = [
    "",
    " ",
    "plainaddress",
    "@example.com",
    "casey@",
    "casey@@example.com",
    "casey@example..com",
    "casey example@example.com",
    "casey@exa mple.com",
    "casey@example.com\x00",
    "\x00",
    "<script>@example.com",
    "casey@" + "a" * 300 + ".com",
    "a" * 250 + "@example.com",
    "casey@example.com\r\nBcc: x@example.net",
    "ca\u200bsey@example.com",
    "🙂@example.com",
]

OVERLONG = "x" * 5000


@pytest.fixture
def guest() -> Client:
    return Client(raise_request_exception=True)


@pytest.mark.parametrize("email", MALFORMED_EMAILS)
def test_signup_with_malformed_email_is_400(guest, email):
    response = guest.post("/accounts/signup/", signup_data(email=email))
    assert response.status_code == 400
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "field", ["full_name", "password", "password_confirm", "country", "age", "email"]
)
def test_signup_with_overlong_field_is_400(guest, field):
    value = OVERLONG + "@example.com" if field == "email" else OVERLONG
    response = guest.post("/accounts/signup/", signup_data(**{field: value}))
    assert response.status_code == 400
    assert not User.objects.exists()


@pytest.mark.parametrize("field", ["full_name", "password"])
def test_signup_with_nul_bytes_is_400(guest, field):
    response = guest.post("/accounts/signup/", signup_data(**{field: "abc\x00def-ghij-klm"}))
    assert response.status_code == 400
    assert not User.objects.exists()


def test_signup_with_repeated_and_odd_fields_is_not_a_500(guest):
    response = guest.post(
        "/accounts/signup/",
        {
            "email": ["a@example.com", "b@example.com"],
            "age": ["13_or_older", "under_13"],
            "unexpected": "x",
        },
    )
    assert response.status_code in {400, 403}
    assert not User.objects.exists()


@pytest.mark.parametrize("email", MALFORMED_EMAILS)
def test_login_with_malformed_email_is_400(guest, customer, email):
    assert guest.post("/accounts/login/", {"email": email, "password": PASSWORD}).status_code == 400


def test_login_with_overlong_password_is_400(guest, customer):
    assert (
        guest.post("/accounts/login/", {"email": customer.email, "password": OVERLONG}).status_code
        == 400
    )
    assert guest.post("/accounts/login/", {"email": "", "password": ""}).status_code == 400


@pytest.mark.parametrize("email", MALFORMED_EMAILS[:8])
def test_password_reset_with_malformed_email_is_400(guest, email, mailoutbox):
    assert guest.post("/accounts/password-reset/", {"email": email}).status_code == 400
    assert mailoutbox == []


FULLWIDTH_DIGITS = "\uff11\uff12\uff13\uff14\uff15\uff16"
ARABIC_INDIC_DIGITS = "\u0661\u0662\u0663\u0664\u0665\u0666"
BAD_CODES = [
    "",
    " ",
    "abc",
    "12345",
    "1234567",
    "999999999999999999999",
    "-123456",
    FULLWIDTH_DIGITS,
    ARABIC_INDIC_DIGITS,
    "12 34 56",
    "\x00\x00\x00",
    "x" * 21,
    "x" * 5000,
    "' OR 1=1 --",
    "abcde-fghjk-extra",
]


@pytest.mark.parametrize("code", BAD_CODES)
def test_second_factor_with_invalid_code_is_400(customer, code):
    enable_2fa(customer)
    client = Client(raise_request_exception=True)
    client.post("/accounts/login/", {"email": customer.email, "password": PASSWORD})
    response = client.post("/accounts/login/2fa/", {"code": code})
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("code", BAD_CODES)
def test_2fa_setup_with_invalid_code_is_400(customer, code):
    client = login_client(customer)
    client.get("/accounts/2fa/setup/")
    response = client.post("/accounts/2fa/setup/", {"code": code})
    assert response.status_code == 400
    assert not customer.totpdevice_set.filter(confirmed=True).exists()


@pytest.mark.parametrize("code", BAD_CODES)
def test_2fa_disable_with_invalid_code_is_400(customer, code):
    enable_2fa(customer)
    client = login_client(customer)
    assert client.post("/accounts/2fa/disable/", {"code": code}).status_code == 400
    assert customer.totpdevice_set.filter(confirmed=True).exists()


@pytest.mark.parametrize(
    "token",
    ["x", "a" * 2000, "..%2F..%2Fetc", "e30:1:abc", "eyJ1IjoxfQ:1t0:sig", "%00", "' OR 1=1 --"],
)
def test_verification_with_garbage_token_is_400(guest, token):
    assert guest.get(f"/accounts/verify/{token}/").status_code in {400, 404}


def test_notification_ids_out_of_range_are_404(customer):
    client = Client(raise_request_exception=True)
    client.force_login(customer)
    for nid in ["0", "99999999999999999999999", "9223372036854775808"]:
        assert client.post(f"/accounts/notifications/{nid}/read/").status_code == 404
    assert client.get("/accounts/notifications/?page=abc").status_code == 200
    assert client.get("/accounts/notifications/?page=-1").status_code == 200
    assert client.get("/accounts/notifications/?page=99999999999999999999").status_code == 200


def test_profile_with_hostile_input_is_400_and_not_saved(customer):
    client = Client(raise_request_exception=True)
    client.force_login(customer)
    for data in [
        {"full_name": OVERLONG, "country": "IE"},
        {"full_name": "Casey", "country": OVERLONG},
        {"full_name": "Casey\x00", "country": "IE"},
        {"full_name": "Casey", "country": "IE", "preferred_currency": OVERLONG},
        {"full_name": "Casey", "country": "IE", "website": "http://" + "a" * 5000},
        {"full_name": "Casey", "country": "IE", "phone": "\x00" * 10},
        {},
    ]:
        assert client.post("/accounts/profile/", data).status_code == 400, data
    customer.refresh_from_db()
    assert customer.full_name == "Casey Customer"


@pytest.mark.parametrize("new_email", MALFORMED_EMAILS)
def test_email_change_with_malformed_address_is_400(customer, new_email):
    client = Client(raise_request_exception=True)
    client.force_login(customer)
    response = client.post(
        "/accounts/profile/email/", {"new_email": new_email, "password": PASSWORD}
    )
    assert response.status_code == 400
    customer.refresh_from_db()
    assert customer.pending_email == ""


def test_password_change_with_overlong_values_is_400(customer):
    client = Client(raise_request_exception=True)
    client.force_login(customer)
    response = client.post(
        "/accounts/profile/password/",
        {"old_password": OVERLONG, "new_password1": OVERLONG, "new_password2": OVERLONG},
    )
    assert response.status_code == 400
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)
