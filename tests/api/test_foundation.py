"""The API's shared parts: one error shape, the schema and its docs, Idempotency-Key."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest
from django.db import connection
from rest_framework import exceptions, serializers
from rest_framework.test import APIClient

from accounts.models import IdempotencyKey, User
from accounts.services.idempotency import (
    IdempotencyRefused,
    idempotent_run,
    request_fingerprint,
)
from common.api.errors import ApiError, domain_error, exception_handler
from tests.factories import UserFactory


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Subrefused(_Refused):
    pass


domain_error(_Refused, status_code=409, code="refused_for_test")


def _body(exc: Exception) -> tuple[int, dict[str, Any]]:
    response = exception_handler(exc, {})
    assert response is not None
    return response.status_code, response.data


def test_domain_errors_keep_the_service_message_and_subclasses_map_too() -> None:
    assert _body(_Subrefused("Not in this state.")) == (
        409,
        {"error": {"code": "refused_for_test", "message": "Not in this state."}},
    )


def test_validation_errors_name_each_field() -> None:
    class _S(serializers.Serializer[Any]):
        name = serializers.CharField(max_length=3)
        inner = serializers.DictField(child=serializers.IntegerField())

    s = _S(data={"name": "toolong", "inner": {"a": "x"}})
    assert not s.is_valid()
    status, body = _body(exceptions.ValidationError(s.errors))
    assert status == 400
    assert body["error"]["code"] == "invalid"
    assert set(body["error"]["fields"]) == {"name", "inner.a"}
    assert "name" in body["error"]["message"] or "Ensure" in body["error"]["message"]


def test_throttled_says_when_to_retry() -> None:
    response = exception_handler(exceptions.Throttled(wait=12.2), {})
    assert response is not None and response.status_code == 429
    assert response["Retry-After"] == "13"
    assert response.data["error"] == {
        "code": "throttled",
        "message": "Too many requests. Please try again in 13 seconds.",
    }


def test_api_error_carries_its_own_status_and_code() -> None:
    assert _body(ApiError("Not yet.", code="not_ready", status_code=409)) == (
        409,
        {"error": {"code": "not_ready", "message": "Not yet."}},
    )


def test_an_unknown_api_path_is_a_json_404_not_a_page(db) -> None:
    response = APIClient().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


def test_the_schema_is_openapi_3_with_the_error_component(db) -> None:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "Error" in schema["components"]["schemas"]


def test_the_docs_are_served_from_our_own_files_under_the_strict_csp(db) -> None:
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "https://" not in html and "http://" not in html.replace("http://testserver", "")
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    script = APIClient().get("/api/docs/?script=")
    assert script.status_code == 200


# --- Idempotency-Key ---------------------------------------------------------------------------
def _run(calls: list[int]) -> Any:
    def run() -> tuple[int, dict[str, Any]]:
        calls.append(1)
        return 201, {"n": len(calls)}

    return run


def test_a_retry_with_the_same_key_replays_the_first_answer(db) -> None:
    user = UserFactory()
    calls: list[int] = []
    fp = request_fingerprint("POST", "/x", {"a": 1})
    first = idempotent_run(actor=user, key="k-1", scope="s", fingerprint=fp, run=_run(calls))
    again = idempotent_run(actor=user, key="k-1", scope="s", fingerprint=fp, run=_run(calls))
    assert (first.status_code, first.body, first.replayed) == (201, {"n": 1}, False)
    assert (again.status_code, again.body, again.replayed) == (201, {"n": 1}, True)
    assert calls == [1]


def test_the_same_key_for_another_request_is_refused(db) -> None:
    user = UserFactory()
    idempotent_run(actor=user, key="k", scope="s", fingerprint="a", run=_run([]))
    with pytest.raises(IdempotencyRefused) as info:
        idempotent_run(actor=user, key="k", scope="s", fingerprint="b", run=_run([]))
    assert info.value.reused


def test_keys_are_per_user(db) -> None:
    one, two = cast(User, UserFactory()), cast(User, UserFactory())
    calls: list[int] = []
    idempotent_run(actor=one, key="k", scope="s", fingerprint="a", run=_run(calls))
    idempotent_run(actor=two, key="k", scope="s", fingerprint="a", run=_run(calls))
    assert len(calls) == 2


@pytest.mark.parametrize("key", ["", " ", "x" * 101, "bad\nkey"])
def test_a_malformed_key_is_refused(db, key: str) -> None:
    with pytest.raises(IdempotencyRefused):
        idempotent_run(actor=UserFactory(), key=key, scope="s", fingerprint="a", run=_run([]))


def test_a_failed_first_attempt_leaves_no_key_so_the_retry_runs(db) -> None:
    user = cast(User, UserFactory())

    def boom() -> tuple[int, dict[str, Any]]:
        raise _Refused("no")

    with pytest.raises(_Refused):
        idempotent_run(actor=user, key="k", scope="s", fingerprint="a", run=boom)
    assert not IdempotencyKey.objects.filter(user=user).exists()
    out = idempotent_run(actor=user, key="k", scope="s", fingerprint="a", run=_run([]))
    assert not out.replayed


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_run_once() -> None:
    """The second waits on the unique index while the first is inside its transaction."""
    user = cast(User, UserFactory())
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []
    results: list[Any] = []

    def slow() -> tuple[int, dict[str, Any]]:
        calls.append(1)
        started.set()
        release.wait(5)
        return 201, {"made": True}

    def worker(run: Any) -> None:
        try:
            results.append(
                idempotent_run(actor=user, key="same", scope="s", fingerprint="f", run=run)
            )
        finally:
            connection.close()

    first = threading.Thread(target=worker, args=(slow,))
    first.start()
    assert started.wait(5)
    second = threading.Thread(target=worker, args=(_run(calls),))
    second.start()
    second.join(0.5)
    assert second.is_alive(), "the retry must wait for the first request's transaction"
    release.set()
    first.join(5)
    second.join(5)
    assert len(calls) == 1
    assert sorted(r.replayed for r in results) == [False, True]
    assert all(r.body == {"made": True} for r in results)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/privacy/policy/versions/",
        "/api/v1/orders/",
        "/api/v1/me/notifications/",
        "/api/v1/privacy/requests/",
    ],
)
def test_a_forged_cursor_is_the_documented_404(db, path: str) -> None:
    """base64("p=abc"): DRF would put "abc" into a filter on a number or date column."""
    from tests.api.conftest import api_client

    response = api_client(cast(User, UserFactory())).get(path + "?cursor=cD1hYmM=")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_token_with_a_nul_is_refused_not_an_error(db) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "\x00" * 20)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
