"""Who gets what, for every API operation: anonymous, the owner, another customer, support,
retoucher and privacy officer each get exactly the intended status (IMG-2: another
customer's object is a 404 everywhere). The matrix must cover the schema exactly."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from accounts.models import User
from tests.api.conftest import api_client
from tests.api.matrix_helpers import (
    ANONYMOUS,
    MATRIX,
    OWNER,
    PERSONAS,
    V1,
    Ctx,
    Row,
)

pytestmark = pytest.mark.django_db

ERROR_CODES = {401: "not_authenticated", 404: "not_found"}


@pytest.fixture(autouse=True)
def _own_service_limits(settings: Any) -> None:
    """The DSR services' own per-address limits count in the shared Redis: a fresh key
    space per case, so one case's request does not limit another's."""
    settings.CACHE_PREFIX = f"m-{uuid.uuid4().hex[:12]}"


def _persona(request: pytest.FixtureRequest, persona: str, owner: User) -> User | None:
    if persona == ANONYMOUS:
        return None
    if persona == OWNER:
        return owner
    user = request.getfixturevalue(persona)
    assert isinstance(user, User)
    return user


CASES = [
    pytest.param(row, persona, id=f"{row.operation_id}-{persona}")
    for row in MATRIX
    for persona in PERSONAS
]


@pytest.mark.parametrize(("row", "persona"), CASES)
def test_access_matrix_IMG_2(
    row: Row, persona: str, request: pytest.FixtureRequest, customer: User, settings: Any
) -> None:
    actor = _persona(request, persona, customer)
    client = api_client(actor)
    call = row.build(Ctx(owner=customer, actor=actor, settings=settings))
    send = getattr(client, row.method.lower())
    response = send(call.url, call.data, format=call.format)
    expected = row.expect[persona]
    assert response.status_code == expected, (
        f"{row.method} {call.url} as {persona}: {response.status_code}, {response.content[:400]!r}"
    )
    if expected >= 400:
        body = response.json()
        assert set(body) == {"error"} and body["error"]["message"], body
        assert body["error"]["code"] == ERROR_CODES[expected], body
    content = response.content.decode(errors="replace")
    if persona != OWNER:
        # Never the owner's data to anyone else: not in a list, not in an error.
        leaked = [m for m in call.markers if m in content]
        assert not leaked, f"{row.operation_id} shows the owner's {leaked} to {persona}"
    elif row.lists_owner_data:
        # The owner does see them: the check above is not vacuous.
        assert all(m in content for m in call.markers), content[:400]


def _schema_operations() -> dict[tuple[str, str], str]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    out = {}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                out[(method.upper(), operation["operationId"])] = path
    return out


def test_matrix_covers_every_operation_of_the_schema_exactly() -> None:
    """A new endpoint without a matrix row (or a row for a removed one) fails here."""
    schema = _schema_operations()
    matrix = {(row.method, row.operation_id): f"{V1}{row.path}" for row in MATRIX}
    assert len(matrix) == len(MATRIX), "an operation has two rows"
    missing = sorted(set(schema) - set(matrix))
    extra = sorted(set(matrix) - set(schema))
    assert not missing, f"operations without a matrix row: {missing}"
    assert not extra, f"matrix rows for no operation: {extra}"
    assert matrix == schema, "a row's path template differs from the schema's"


def test_every_row_names_every_persona() -> None:
    for row in MATRIX:
        assert set(row.expect) == set(PERSONAS), row.operation_id
