"""Idempotency-Key on the API's creates (orders, passport orders): one place for the header."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.services.idempotency import (
    KEY_MAX,
    IdempotencyRefused,
    idempotent_run,
    request_fingerprint,
)
from common.api.authentication import request_user
from common.api.errors import ApiError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        f"1 to {KEY_MAX} printable characters, new for each distinct request. A retry with "
        f"the same key and body returns the first answer (header `{REPLAYED_HEADER}: true`) "
        "and creates nothing; the same key with another body is a 422."
    ),
)
IDEMPOTENCY_ERRORS = {
    "e400": "Invalid input, or an Idempotency-Key that is empty or too long "
    "(`idempotency_key_invalid`).",
    "e422": "This Idempotency-Key was used for a different request (`idempotency_key_reused`).",
}


def json_body(data: Any) -> dict[str, Any]:
    """Serializer output as plain JSON types, as it is stored for a replay."""
    body: dict[str, Any] = json.loads(JSONRenderer().render(data))
    return body


def keyed_create(
    request: Request,
    *,
    scope: str,
    body: Sequence[Any],
    run: Callable[[], tuple[int, dict[str, Any]]],
) -> Response:
    """Run *run* (a create), once per Idempotency-Key when the client sends one.

    *body* is what the request asked for (validated data, file digests): the fingerprint
    that tells a true retry from a different request under the same key.
    """
    key = request.headers.get(HEADER)
    if key is None:
        status_code, data = run()
        return Response(data, status=status_code)
    try:
        outcome = idempotent_run(
            actor=request_user(request),
            key=key,
            scope=scope,
            fingerprint=request_fingerprint(request.method, request.path, *body),
            run=run,
        )
    except IdempotencyRefused as exc:
        if exc.reused:
            raise ApiError(exc.message, code="idempotency_key_reused", status_code=422) from exc
        raise ApiError(exc.message, code="idempotency_key_invalid", status_code=400) from exc
    response = Response(outcome.body, status=outcome.status_code)
    if outcome.replayed:
        response[REPLAYED_HEADER] = "true"
    return response
