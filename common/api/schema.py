"""OpenAPI helpers: every operation documents the errors it can answer, in one shape."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse

from common.api.errors import ErrorSerializer

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Machine-readable, stable."},
                "message": {"type": "string", "description": "For people."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
_DESCRIPTIONS = {
    "400": "Invalid input: `code` is `invalid` (with `fields`) or a rule's own code.",
    "401": "Not signed in, or the token is invalid or expired.",
    "403": "Signed in, but not allowed (e.g. CSRF missing on a session request).",
    "404": "No such object, or it belongs to someone else.",
    "404-cursor": "No such page: `cursor` is not one this list gave out.",
    "409": "Refused by a rule in the object's current state.",
    "429": "Too many requests: see the Retry-After header.",
}


def errors(*codes: int, **described: str) -> dict[int, OpenApiResponse]:
    """Responses for ``extend_schema``: ``errors(400, 409, e409="Already paid")``."""
    out = {}
    for code in codes:
        text = described.get(f"e{code}") or _DESCRIPTIONS.get(str(code), "Error.")
        out[code] = OpenApiResponse(ErrorSerializer, description=text)
    return out


def _add(responses: dict[str, Any], code: str, described: str = "") -> None:
    if code not in responses:
        responses[code] = {
            "description": _DESCRIPTIONS[described or code],
            "content": {"application/json": {"schema": _ERROR_REF}},
        }


def add_common_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
    """Postprocessing hook: the errors any operation can give, added where missing."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            _add(responses, "429")
            security = operation.get("security") or []
            if security and {} not in security:
                _add(responses, "401")
                _add(responses, "403")
            if "{" in path:
                _add(responses, "404")
            # DRF's cursor pagination answers a cursor it cannot decode with 404.
            if any(p.get("name") == "cursor" for p in operation.get("parameters", [])):
                _add(responses, "404", "404-cursor")
            if method in {"post", "put", "patch"}:
                _add(responses, "400")
            responses.get("429", {}).setdefault(
                "headers",
                {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
            )
    return result
