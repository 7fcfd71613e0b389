"""In-site notifications: one user's inbox, header count, no cross-user access."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Notification
from accounts.services import notification_create
from tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db

INBOX = "/accounts/notifications/"


def test_created_notification_shows_in_inbox_and_header_count(customer_client, customer):
    notification_create(
        user=customer,
        title="Your passport photo is ready",
        body="Download it from your order.",
        link="/orders/1/",
    )

    response = customer_client.get(INBOX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Your passport photo is ready" in html
    assert "Download it from your order." in html
    assert 'aria-label="1 unread"' in html
    # The header count is on every page, not just the inbox.
    assert 'aria-label="1 unread"' in customer_client.get("/accounts/profile/").content.decode()


def test_header_count_counts_only_unread(customer_client, customer):
    for i in range(3):
        notification_create(user=customer, title=f"n{i}")
    Notification.objects.filter(title="n0").update(read_at="2024-01-01T00:00:00Z")
    assert 'aria-label="2 unread"' in customer_client.get(INBOX).content.decode()


def test_marking_read(customer_client, customer):
    note = notification_create(user=customer, title="Hello")

    response = customer_client.post(f"/accounts/notifications/{note.pk}/read/")

    assert response.status_code == 302
    note.refresh_from_db()
    assert note.read_at is not None
    assert "unread" not in customer_client.get(INBOX).content.decode().split("<main>")[0]


def test_mark_all_read(customer_client, customer, other_customer):
    for _ in range(3):
        notification_create(user=customer, title="mine")
    theirs = notification_create(user=other_customer, title="theirs")

    assert customer_client.post("/accounts/notifications/read-all/").status_code == 302

    assert not Notification.objects.filter(user=customer, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_another_customers_notification_is_404_and_untouched(customer_client, other_customer):
    theirs = notification_create(user=other_customer, title="Olive's private notice")

    response = customer_client.post(f"/accounts/notifications/{theirs.pk}/read/")

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert b"Olive's private notice" not in customer_client.get(INBOX).content


def test_inbox_never_shows_other_users_notifications(
    customer_client, customer, other_customer, other_client
):
    notification_create(user=customer, title="For Casey")
    notification_create(user=other_customer, title="For Olive")
    mine = customer_client.get(INBOX).content.decode()
    theirs = other_client.get(INBOX).content.decode()
    assert "For Casey" in mine
    assert "For Olive" not in mine
    assert "For Olive" in theirs
    assert "For Casey" not in theirs


def test_mark_read_needs_post_and_login(client, customer_client, customer):
    note = notification_create(user=customer, title="x")
    assert customer_client.get(f"/accounts/notifications/{note.pk}/read/").status_code == 405
    response = client.post(f"/accounts/notifications/{note.pk}/read/")
    assert response.status_code == 302
    note.refresh_from_db()
    assert note.read_at is None


def test_inbox_query_count_does_not_grow_with_notifications(
    customer_client, customer, django_assert_num_queries
):
    NotificationFactory(user=customer)
    customer_client.get(INBOX)  # warm the session cache
    with CaptureQueriesContext(connection) as few:
        assert customer_client.get(INBOX).status_code == 200

    NotificationFactory.create_batch(40, user=customer)
    with django_assert_num_queries(len(few.captured_queries)):
        response = customer_client.get(INBOX)
    assert response.status_code == 200
    assert response.content.decode().count('class="unread"') == 25  # one page
    assert 'aria-label="41 unread"' in response.content.decode()


def test_long_titles_are_cut_not_refused(customer):
    note = notification_create(user=customer, title="t" * 500, link="/x" * 400)
    assert len(note.title) == 200
    assert len(note.link) == 500
