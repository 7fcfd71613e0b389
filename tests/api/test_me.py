"""The signed-in person over the API: profile (ACC-1) and in-site notifications."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent, Notification
from tests.api.conftest import api_client
from tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"
NOTES = "/api/v1/me/notifications/"


def _error(response) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return str(body["error"]["code"])


def test_me_shows_every_profile_field_ACC_1(customer_api, customer) -> None:
    body = customer_api.get(ME).json()
    assert body["email"] == customer.email and body["email_verified"] is True
    assert body["full_name"] == "Casey Customer" and body["country"] == "IE"
    for field in ("phone", "company_name", "website", "street_address", "city", "region"):
        assert body[field] == ""
    assert {"postal_code", "preferred_currency", "vat_id"} <= set(body)


def test_patch_changes_only_what_is_sent_and_is_audited_ACC_1(customer_api, customer) -> None:
    response = customer_api.patch(
        ME,
        {"phone": "+353 1 234 5678", "city": "Cork", "website": "example.com"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["phone"] == "+353 1 234 5678" and body["city"] == "Cork"
    assert body["website"] == "https://example.com"  # the form's rule: https assumed
    customer.refresh_from_db()
    assert customer.city == "Cork" and customer.full_name == "Casey Customer"
    event = AuditEvent.objects.get(action=AuditAction.PROFILE_UPDATED, subject=customer)
    assert sorted(event.detail["fields"]) == ["city", "phone", "website"]


def test_patch_uses_the_web_forms_rules(customer_api, customer) -> None:
    response = customer_api.patch(
        ME, {"phone": "call me maybe", "country": "XX", "full_name": ""}, format="json"
    )
    assert response.status_code == 400 and _error(response) == "invalid"
    assert set(response.json()["error"]["fields"]) == {"phone", "country", "full_name"}
    customer.refresh_from_db()
    assert customer.full_name == "Casey Customer"


def test_email_is_read_only_and_unknown_fields_are_refused(customer_api, customer) -> None:
    response = customer_api.patch(
        ME, {"email": "new@example.com", "is_staff": True, "city": "Cork"}, format="json"
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"email", "is_staff"}
    assert "confirmed" in fields["email"][0]
    customer.refresh_from_db()
    assert customer.email == "casey@example.com" and not customer.is_staff and customer.city == ""


def test_form_encoded_patch_works_too(customer_api, customer) -> None:
    response = customer_api.patch(ME, {"city": "Galway"}, format="multipart")
    assert response.status_code == 200 and response.json()["city"] == "Galway"


@pytest.mark.parametrize("payload", [["a"], "text", {"city": ["Cork"]}, {"city": None}])
def test_bad_bodies_are_400_not_500(customer_api, payload) -> None:
    response = customer_api.patch(ME, payload, format="json")
    assert response.status_code == 400 and _error(response) == "invalid"


def test_me_needs_auth(anon_api) -> None:
    assert anon_api.get(ME).status_code == 401
    assert anon_api.patch(ME, {"city": "x"}, format="json").status_code == 401


def test_notifications_newest_first_with_cursor(customer, other_customer) -> None:
    client = api_client(customer)
    first = NotificationFactory(user=customer, title="first")
    second = NotificationFactory(user=customer, title="second")
    NotificationFactory(user=other_customer, title="not yours")
    page = client.get(NOTES, {"page_size": 1}).json()
    assert [n["title"] for n in page["results"]] == ["second"]
    assert page["results"][0]["id"] == second.pk and page["results"][0]["read"] is False
    following = client.get(page["next"]).json()
    assert [n["id"] for n in following["results"]] == [first.pk]


def test_unread_count_read_one_and_read_all(customer, other_customer) -> None:
    client = api_client(customer)
    notes = [NotificationFactory(user=customer) for _ in range(3)]
    theirs = NotificationFactory(user=other_customer)
    assert client.get(f"{NOTES}unread-count/").json() == {"unread": 3}
    response = client.post(f"{NOTES}{notes[0].pk}/read/")
    assert response.status_code == 200
    assert response.json()["read"] is True and response.json()["read_at"]
    assert client.get(f"{NOTES}unread-count/").json() == {"unread": 2}
    # Another customer's notification is 404 and stays unread.
    assert client.post(f"{NOTES}{theirs.pk}/read/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert client.post(f"{NOTES}read-all/").json() == {"marked": 2}
    assert client.get(f"{NOTES}unread-count/").json() == {"unread": 0}
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_notifications_need_auth(anon_api, customer) -> None:
    note = NotificationFactory(user=customer)
    for response in (
        anon_api.get(NOTES),
        anon_api.get(f"{NOTES}unread-count/"),
        anon_api.post(f"{NOTES}{note.pk}/read/"),
        anon_api.post(f"{NOTES}read-all/"),
    ):
        assert response.status_code == 401 and _error(response) == "not_authenticated"


def test_reading_a_read_notification_again_is_harmless(customer_api, customer) -> None:
    note = NotificationFactory(user=customer, read_at=timezone.now())
    assert customer_api.post(f"{NOTES}{note.pk}/read/").status_code == 200
    assert customer_api.post(f"{NOTES}999999/read/").status_code == 404


def test_notification_list_query_count_does_not_grow(
    customer, django_assert_max_num_queries
) -> None:
    client = api_client(customer)
    NotificationFactory(user=customer)
    with django_assert_max_num_queries(6) as one:
        assert len(client.get(NOTES).json()["results"]) == 1
    for _ in range(15):
        NotificationFactory(user=customer)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(client.get(NOTES).json()["results"]) == 16


def test_user_throttle_answers_429_with_retry_after(customer, settings) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "user": "2/min",
        },
    }
    cache.delete(f"throttle_user_user:{customer.pk}")  # shared cache: start from zero
    client = api_client(customer)
    statuses = [client.get(ME).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    response = client.get(ME)
    assert _error(response) == "throttled" and int(response["Retry-After"]) > 0
