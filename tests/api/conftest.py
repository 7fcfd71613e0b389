"""API fixtures: clients that sign in with a real personal token (knox), as apps do."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiToken, User


def token_for(user: User, name: str = "test") -> str:
    """A fresh personal API token for *user* (the secret, which is shown only once)."""
    _row, secret = ApiToken.objects.create(user=user, name=name)
    return str(secret)


def api_client(user: User | None = None, **headers: str) -> APIClient:
    """A client with *user*'s token in the Authorization header (anonymous for None)."""
    client = APIClient(**headers)
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


@pytest.fixture(autouse=True)
def _generous_throttles(settings) -> None:
    """Throttle counters live in the shared Redis cache: tests that are not about
    throttling get budgets they cannot reach; throttle tests set their own rates."""
    rates = dict(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(rates, "100000/min"),
    }


@pytest.fixture
def make_api_client() -> Callable[..., APIClient]:
    return api_client


@pytest.fixture
def customer_api(customer: User) -> APIClient:
    return api_client(customer)


@pytest.fixture
def other_api(other_customer: User) -> APIClient:
    return api_client(other_customer)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()
