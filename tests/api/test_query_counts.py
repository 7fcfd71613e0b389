"""Query counts on the API's lists do not grow with the number of items: the same count
with 1 item as with 25 (each list is one page, so every item is serialized)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, Notification, User
from consent.models import ConsentPurpose, PolicyStatus, PolicyVersion
from dsr.models import RequestType, Ticket
from dsr.services.intake import dsr_request_from_account
from orders.models import ActorRole, Invoice, OrderEvent, OrderStatus
from tests.api.conftest import api_client
from tests.api.matrix_helpers import V1, order, photo, result

pytestmark = pytest.mark.django_db

MANY = 25
PAGE = "?page_size=100"


@dataclass(frozen=True)
class Listing:
    """A list endpoint: *start* makes what the list hangs on and returns its URL and a
    function adding n items; *items* counts the items in an answer."""

    operation_id: str
    start: Callable[[User], tuple[str, Callable[[int], None]]]
    items: Callable[[Any], int]
    anonymous: bool = False


def _results(body: Any) -> int:
    return len(body["results"])


def _whole(body: Any) -> int:
    return len(body)


def _orders(owner: User) -> tuple[str, Callable[[int], None]]:
    def add(n: int) -> None:
        for _ in range(n):
            photo(order(owner))  # photo_count is counted per row

    return f"{V1}/orders/{PAGE}", add


def _photos(owner: User) -> tuple[str, Callable[[int], None]]:
    made = order(owner)

    def add(n: int) -> None:
        for _ in range(n):
            photo(made)

    return f"{V1}/orders/{made.reference}/photos/", add


def _results_of(owner: User) -> tuple[str, Callable[[int], None]]:
    made = order(owner, OrderStatus.DELIVERED)
    counter = iter(range(1000))

    def add(n: int) -> None:
        for _ in range(n):
            result(made, next(counter))

    return f"{V1}/orders/{made.reference}/results/", add


def _notifications(owner: User) -> tuple[str, Callable[[int], None]]:
    def add(n: int) -> None:
        Notification.objects.bulk_create(
            [Notification(user=owner, title=f"Note {i}") for i in range(n)]
        )

    return f"{V1}/me/notifications/{PAGE}", add


def _requests(owner: User) -> tuple[str, Callable[[int], None]]:
    counter = iter(range(1000))
    template: list[Ticket] = []

    def add(n: int) -> None:
        for _ in range(n):
            if not template:
                template.append(
                    dsr_request_from_account(user=owner, type=RequestType.AUTOMATED).ticket
                )
                continue
            # Copies of a real ticket: the service merges a second request of a kind.
            copy = template[0]
            copy.pk = None
            copy.reference = f"DSR-Q{next(counter):07d}"
            copy.save()

    return f"{V1}/privacy/requests/{PAGE}", add


def _tokens(owner: User) -> tuple[str, Callable[[int], None]]:
    def add(n: int) -> None:
        for i in range(n):
            ApiToken.objects.create(user=owner, name=f"token {i}")

    return f"{V1}/auth/tokens/", add


def _consents(owner: User) -> tuple[str, Callable[[int], None]]:
    counter = iter(range(1000))
    client = api_client(owner)

    def add(n: int) -> None:
        for _ in range(n):
            key = f"extra{next(counter)}"
            ConsentPurpose.objects.create(key=key, name=key, kind="other", wording="x")
            assert client.post(f"{V1}/consents/{key}/grant/").status_code == 200

    return f"{V1}/consents/", add


def _policy_versions(owner: User) -> tuple[str, Callable[[int], None]]:
    counter = iter(range(1, 1000))

    def add(n: int) -> None:
        when = timezone.now() - timedelta(days=30)
        for _ in range(n):
            number = next(counter)
            PolicyVersion.objects.create(
                number=number,
                status=PolicyStatus.PUBLISHED,
                effective_at=when + timedelta(hours=number),
                published_at=when,
                summary=f"Version {number}",
            )

    return f"{V1}/privacy/policy/versions/{PAGE}", add


def _order_detail(owner: User) -> tuple[str, Callable[[int], None]]:
    made = order(owner, OrderStatus.DELIVERED)
    counter = iter(range(1, 1000))

    def add(n: int) -> None:
        for _ in range(n):
            i = next(counter)
            photo(made)
            result(made, i)
            OrderEvent.objects.create(
                order=made, to_status=OrderStatus.DELIVERED, actor_role=ActorRole.CUSTOMER
            )
            Invoice.objects.create(
                series="QC",
                number=i,
                order=made,
                customer=owner,
                description="Retouching",
                total_minor=900,
                currency="EUR",
            )

    return f"{V1}/orders/{made.reference}/", add


def _detail_items(body: Any) -> int:
    counts = {len(body[k]) for k in ("photos", "results", "events", "invoices")}
    assert len(counts) == 1, body
    return counts.pop()


LISTINGS = [
    Listing("orders_list", _orders, _results),
    Listing("orders_photos_list", _photos, _whole),
    Listing("orders_results_list", _results_of, _whole),
    Listing("me_notifications_list", _notifications, _results),
    Listing("privacy_requests_list", _requests, _results),
    Listing("auth_tokens_list", _tokens, _whole),
    Listing("consents_list", _consents, lambda body: len(body["purposes"]) - 1),
    Listing("privacy_policy_versions_list", _policy_versions, _results, anonymous=True),
    Listing("orders_retrieve", _order_detail, _detail_items),
]


def _param(listing: Listing) -> Any:
    return pytest.param(listing, id=listing.operation_id)


@pytest.mark.parametrize("listing", [_param(lst) for lst in LISTINGS])
def test_list_query_count_is_constant_in_the_number_of_items(
    listing: Listing, customer: User, django_assert_num_queries: Any
) -> None:
    client = APIClient() if listing.anonymous else api_client(customer)
    url, add = listing.start(customer)
    add(1)
    client.get(url)  # warm: a token's first use records when it was last used
    with CaptureQueriesContext(connection) as one:
        response = client.get(url)
    baseline = len(one.captured_queries)  # now: the next request resets the query log
    assert response.status_code == 200, response.content[:400]
    extra = 1 if listing.operation_id == "auth_tokens_list" else 0  # the client's own token
    assert listing.items(response.json()) == 1 + extra
    add(MANY - 1)
    with django_assert_num_queries(baseline):
        response = client.get(url)
    assert listing.items(response.json()) == MANY + extra


def test_passport_documents_make_no_query(django_assert_num_queries: Any) -> None:
    """The documents come from the specs in code: no item is stored, nothing is read."""
    with django_assert_num_queries(0):
        response = APIClient().get(f"{V1}/passport/documents/")
    assert response.status_code == 200 and len(response.json()) > 1
