"""One error shape for the whole API: {"error": {"code", "message", "fields"?}}.

Services raise their own exceptions (TransitionRefused, UploadRefused, ...); each app's
API registers how they map to a status and a code with ``domain_error``, so views stay
thin and no rule is restated in the API layer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

_DOMAIN: dict[type[BaseException], tuple[int, str]] = {}

# DRF's own codes, renamed where theirs read oddly to a client.
_CODES = {
    "not_authenticated": "not_authenticated",
    "authentication_failed": "authentication_failed",
    "permission_denied": "forbidden",
    "not_found": "not_found",
    "method_not_allowed": "method_not_allowed",
    "not_acceptable": "not_acceptable",
    "unsupported_media_type": "unsupported_media_type",
    "throttled": "throttled",
    "parse_error": "malformed_request",
    "invalid": "invalid",
}


class ApiError(exceptions.APIException):
    """An error a view raises itself, with its own status and code."""

    def __init__(self, message: str, *, code: str, status_code: int = 400) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code


class ErrorBodySerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="Machine-readable, stable: switch on this.")
    message = serializers.CharField(help_text="For people; may change wording.")

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # "fields" cannot be a declared attribute: it would hide Serializer.fields.
        fields = super().get_fields()
        fields["fields"] = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            required=False,
            help_text="Per-field messages, for invalid input.",
        )
        return fields


class ErrorSerializer(serializers.Serializer[Any]):
    error = ErrorBodySerializer()


def domain_error(exc_class: type[BaseException], *, status_code: int, code: str) -> None:
    """Declare how a service exception reads over the API (its message is shown as is)."""
    _DOMAIN[exc_class] = (status_code, code)


def error_body(code: str, message: str, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def _domain(exc: BaseException) -> tuple[int, str] | None:
    for klass in type(exc).__mro__:
        if klass in _DOMAIN:
            return _DOMAIN[klass]
    return None


def _message_of(exc: BaseException) -> str:
    return str(getattr(exc, "message", "") or exc) or "The request was refused."


def _flatten(detail: Any) -> dict[str, list[str]]:
    """DRF's nested validation detail as {"field": ["message", ...]} ("a.b" for nesting)."""
    out: dict[str, list[str]] = {}

    def join(prefix: str, key: Any) -> str:
        return f"{prefix}.{key}" if prefix else str(key)

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(join(prefix, key), item)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out.setdefault(prefix or "non_field_errors", []).extend(str(v) for v in value)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(join(prefix, index), item)
        else:
            out.setdefault(prefix or "non_field_errors", []).append(str(value))

    walk("", detail)
    return out


def _validation(detail: Any) -> Response:
    fields = _flatten(detail)
    first = next(iter(fields.values()), ["The request is not valid."])[0]
    general = fields.pop("non_field_errors", None)
    message = general[0] if general else f"Please check the highlighted fields: {first}"
    return Response(error_body("invalid", message, fields), status=status.HTTP_400_BAD_REQUEST)


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    mapped = _domain(exc)
    if mapped is not None:
        return Response(error_body(mapped[1], _message_of(exc)), status=mapped[0])
    if isinstance(exc, DjangoValidationError):
        return _validation(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, exceptions.ValidationError):
        return _validation(exc.detail)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, dict(context))
    if response is None:
        return None  # a real bug: Django's 500 handler answers (JSON under /api/)
    assert isinstance(exc, exceptions.APIException)
    code = exc.get_codes()
    code = code if isinstance(code, str) else "error"
    message = str(exc.detail) if not isinstance(exc.detail, dict | list) else "Request refused."
    if isinstance(exc, exceptions.Throttled):
        message = "Too many requests. Please wait before trying again."
        wait = getattr(exc, "wait", None)
        if wait is not None:
            message = f"Too many requests. Please try again in {math.ceil(wait)} seconds."
    response.data = error_body(_CODES.get(code, code), message)
    return response


def json_error_response(request: HttpRequest, status_code: int) -> JsonResponse:
    """Django's own 404/500 under /api/: the API's error shape, never a page or a trace."""
    code, message = {
        400: ("malformed_request", "The request could not be understood."),
        403: ("forbidden", "You do not have access to this."),
        404: ("not_found", "Not found."),
    }.get(status_code, ("server_error", "Something went wrong; it was logged."))
    return JsonResponse(error_body(code, message), status=status_code)
