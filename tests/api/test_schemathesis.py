"""Property-based tests of the whole API against its own OpenAPI schema (schemathesis).

The schema is generated in-process by drf-spectacular and every operation is called on the
Django app in-process (WSGI), bounded and derandomized so CI runs are reproducible. Operations
that need a sign-in get a fresh personal token of a customer who owns real objects (an order
with a photo, a passport order with its preview, a privacy request, a notification, a second
token), and path parameters are sometimes those objects' keys, so the 200 paths are exercised
too; public operations are called without a token. Checks: no 500s, documented status codes,
content types, headers and bodies, and authentication really enforced (401 without a token,
and with an invalid one). No operation is excluded. Not used: positive_data_acceptance (a
schema-valid body still meets rules the schema cannot state: a selfie must be a usable face
photo, a code must match) and negative_data_rejection (DRF deliberately falls back to the
default for a page_size it cannot use).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import RequestFactory
from django.utils import timezone
from drf_spectacular.views import SpectacularAPIView
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import ApiToken, User
from accounts.services.notifications import notification_create
from consent.models import PolicyStatus, PolicyVersion
from tests.api.conftest import api_client, token_for
from tests.api.orders_helpers import retouch_with_photos
from tests.photos import selfie_jpeg

pytestmark = pytest.mark.django_db

SCHEMA_URL = "/api/schema/?format=json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]


def _requires_auth(operation: Any) -> bool:
    """An operation whose security has no anonymous alternative ({})."""
    security = operation.definition.raw.get("security")
    if security is None:
        security = operation.schema.raw_schema.get("security", [])
    return bool(security) and all(requirement for requirement in security)


@pytest.fixture
def own_cache_keys(settings: Any) -> None:
    """The services' own per-address limits count in the shared Redis: a key space per test."""
    settings.CACHE_PREFIX = f"st-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def in_process_wsgi() -> Iterator[None]:
    """Requests through the WSGI handler inside the test's transaction, as Django's own test
    client does them: the handler's signals would close the connection after each request.
    (The test client reconnects them after each of its requests: use it before this.)"""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def owned(
    own_cache_keys: None, customer: User, django_capture_on_commit_callbacks: Any
) -> dict[str, list[str]]:
    """Real objects of *customer*, by the name of the path parameter that finds each."""
    client = api_client(customer)
    with django_capture_on_commit_callbacks(execute=True):
        order = retouch_with_photos(client, photos=1)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/passport/orders/",
            {
                "document": "us_passport",
                "selfie": SimpleUploadedFile("me.jpg", selfie_jpeg(1200), "image/jpeg"),
            },
            format="multipart",
        )
    assert response.status_code == 201, response.content[:500]
    passport = response.json()["reference"]
    with django_capture_on_commit_callbacks(execute=True):  # the export archive is built
        response = client.post("/api/v1/privacy/requests/", {"type": "access"}, format="json")
    assert response.status_code == 201, response.content[:500]
    ticket = response.json()["request"]["reference"]
    response = api_client().post(
        "/api/v1/privacy/requests/public/",
        {"email": "someone@example.com", "type": "access"},
        format="json",
    )
    assert response.status_code == 202, response.content[:500]
    public_token = response.json()["token"]
    note = notification_create(user=customer, title="Your order is ready")
    spare, _secret = ApiToken.objects.create(user=customer, name="spare")
    now = timezone.now() - timedelta(days=1)
    PolicyVersion.objects.create(
        number=1, status=PolicyStatus.PUBLISHED, effective_at=now, published_at=now, summary="v1"
    )
    return {
        "reference": [order, passport, ticket],
        "token_key": [spare.token_key],
        "key": ["marketing_email"],
        "notification_id": [str(note.pk)],
        "number": ["1"],
        "token": [public_token],
    }


def _published_schema() -> dict[str, Any]:
    """The document /api/schema/ serves, from its own view (at import: no database, no HTTP)."""
    response = SpectacularAPIView.as_view()(RequestFactory().get(SCHEMA_URL))
    response.render()
    assert response.status_code == 200, response.content[:500]
    return dict(json.loads(response.content))


# Bounded: the coverage phase is not (it sends every value of every enum in every media
# type: 1,400 positive cases for PATCH /me/ alone, 45 s), so only the explicit examples and
# the fuzzing phase (positive and negative data, max_examples each) run.
CONFIG = schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}})
schema = schemathesis.openapi.from_dict(_published_schema(), config=CONFIG)
schema.app = get_wsgi_application()
# The signed-in customer and their objects for the running test (set by the fixture below).
CURRENT: dict[str, Any] = {}
TOKEN_PLACEHOLDER = "customer-token"


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    # Generated values almost never name a real object: mix in the customer's own.
    owned = CURRENT.get("owned", {})
    if not path_parameters:
        return st.just(path_parameters)
    options = [path_parameters]
    for name in path_parameters:
        options += [{**path_parameters, name: value} for value in owned.get(name, [])]
    return st.sampled_from(options)


@schema.auth(refresh_interval=None)
class CustomerToken:
    """The customer's token on operations that need a sign-in; public ones go anonymous.

    Some cases are built at collection, before any database: they carry a placeholder,
    which the test swaps for a fresh real token (so revoking it cannot end the run).
    """

    def get(self, case: Any, ctx: Any) -> str | None:
        return TOKEN_PLACEHOLDER if _requires_auth(case.operation) else None

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Token {data}"}


@pytest.fixture(autouse=True)
def _current(customer: User, owned: dict[str, list[str]], in_process_wsgi: None) -> Iterator[None]:
    CURRENT.update(customer=customer, owned=owned)
    yield
    CURRENT.clear()


@schema.parametrize()
@hypothesis_settings(
    max_examples=25,
    derandomize=True,
    # Generous for a loaded CI machine; an operation that takes this long is a finding.
    deadline=timedelta(seconds=10),
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_conforms_to_its_schema(case: Any) -> None:
    if (case.headers or {}).get("Authorization") == f"Token {TOKEN_PLACEHOLDER}":
        case.headers["Authorization"] = f"Token {token_for(CURRENT['customer'], 'schemathesis')}"
    case.call_and_validate(checks=CHECKS)
