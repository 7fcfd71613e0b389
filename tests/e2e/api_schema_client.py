"""A client that knows the API only from its published OpenAPI document, as a third party would.

Operations are found by operationId (method and path template from the schema); no API path is
written anywhere in the tests that use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

SCHEMA_PATH = "/api/schema/?format=json"


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str  # a template: /api/v1/orders/{reference}/


class SchemaClient:
    """httpx over the live server, with operations looked up in the published schema."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout, follow_redirects=False)
        response = self.http.get(SCHEMA_PATH)
        response.raise_for_status()
        self.schema: dict[str, Any] = response.json()
        self.operations: dict[str, Operation] = {}
        for path, item in self.schema["paths"].items():
            for method, operation in item.items():
                if isinstance(operation, dict) and "operationId" in operation:
                    op_id = operation["operationId"]
                    self.operations[op_id] = Operation(op_id, method.upper(), path)

    def close(self) -> None:
        self.http.close()

    def operation(self, operation_id: str) -> Operation:
        assert operation_id in self.operations, f"{operation_id} is not in the published schema"
        return self.operations[operation_id]

    def path_for(self, operation_id: str, **params: Any) -> str:
        path = self.operation(operation_id).path
        for name, value in params.items():
            assert "{" + name + "}" in path, (operation_id, name, path)
            path = path.replace("{" + name + "}", quote(str(value), safe=""))
        assert "{" not in path, f"{operation_id}: path parameters missing in {path}"
        return path

    def call(
        self,
        operation_id: str,
        *,
        token: str | None = None,
        path: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send *operation_id*; kwargs go to httpx (json=, data=, files=, params=)."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Token {token}"
        return self.http.request(
            self.operation(operation_id).method,
            self.path_for(operation_id, **(path or {})),
            headers=all_headers,
            **kwargs,
        )

    def poll(
        self,
        operation_id: str,
        until: Callable[[httpx.Response], bool],
        *,
        what: str,
        timeout: float = 60.0,
        interval: float = 0.5,
        **kwargs: Any,
    ) -> httpx.Response:
        """Call *operation_id* until *until* holds for its answer (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.call(operation_id, **kwargs)
            if until(response):
                return response
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}: "
                    f"{response.status_code} {response.text[:500]}"
                )
            time.sleep(interval)
