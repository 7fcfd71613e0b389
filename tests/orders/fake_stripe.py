"""A local stand-in for the part of Stripe's API we use: Checkout Sessions.

The real API is out of reach in tests (and must never see test traffic), so this
threaded HTTP server on 127.0.0.1 speaks enough of it for the official library:
form-encoded requests in, JSON objects out, Stripe-shaped errors. It records every
request (form fields and headers) so tests can assert what left our server (ORD-2:
no card data), and it can be told to fail (500, dropped connection, 4xx).

Use fake_stripe_running() directly or through a pytest fixture:

    with fake_stripe_running() as fake:
        settings.STRIPE_API_BASE = fake.url
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API_KEY = "sk_test_fake_0123456789"
SESSIONS_PATH = "/v1/checkout/sessions"
# What a queued failure answers: (status, Stripe error object); "close" drops the socket.
FAILURES: dict[str, tuple[int, dict[str, Any]]] = {
    "500": (500, {"type": "api_error", "message": "Something went wrong on Stripe's end."}),
    "400": (
        400,
        {
            "type": "invalid_request_error",
            "code": "email_invalid",
            "param": "customer_email",
            # Stripe echoes what it was sent; the adapter must not log or show this.
            "message": "Invalid email address: casey@example.com",
        },
    ),
    "401": (401, {"type": "invalid_request_error", "message": "Invalid API Key provided"}),
    "429": (429, {"type": "invalid_request_error", "code": "rate_limit", "message": "Slow down"}),
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    # Flat, as sent: {"line_items[0][price_data][currency]": "eur", ...}
    form: dict[str, str]


@dataclass
class FakeStripe:
    url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Idempotency-Key -> session id: a repeated key gets the first answer, as on Stripe.
    idempotent: dict[str, str] = field(default_factory=dict)
    # Popped one per request: "500", "close", "400", "401", "429".
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def session_creates(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == SESSIONS_PATH]

    def session_update(self, session_id: str, **fields: Any) -> None:
        """Move a session along, as a customer paying on Stripe's page would."""
        with self.lock:
            self.sessions[session_id].update(fields)


def _session_new(form: dict[str, str]) -> dict[str, Any]:
    session_id = "cs_test_" + secrets.token_hex(12)
    metadata = {
        key.removeprefix("metadata[").removesuffix("]"): value
        for key, value in form.items()
        if key.startswith("metadata[")
    }
    return {
        "id": session_id,
        "object": "checkout.session",
        "url": f"https://checkout.stripe.test/c/pay/{session_id}",
        "mode": form.get("mode"),
        "status": "open",
        "payment_status": "unpaid",
        "amount_total": int(form.get("line_items[0][price_data][unit_amount]", "0")),
        "currency": form.get("line_items[0][price_data][currency]"),
        "client_reference_id": form.get("client_reference_id"),
        "customer_email": form.get("customer_email"),
        "metadata": metadata,
        "success_url": form.get("success_url"),
        "cancel_url": form.get("cancel_url"),
        "livemode": False,
    }


def _handler_for(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # Keep pytest's output clean.

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            self._handle("POST", dict(parse_qsl(body, keep_blank_values=True)))

        def do_GET(self) -> None:
            self._handle("GET", {})

        def _handle(self, method: str, form: dict[str, str]) -> None:
            path = self.path.split("?", 1)[0]
            with fake.lock:
                fake.requests.append(RecordedRequest(method, path, dict(self.headers), form))
                failure = fake.failures.pop(0) if fake.failures else None
            if failure == "close":
                # No status line at all: the client sees the connection drop.
                self.close_connection = True
                return
            if failure:
                status, error = FAILURES[failure]
                self._json(status, {"error": error})
                return
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                self._json(401, {"error": FAILURES["401"][1]})
                return
            if method == "POST" and path == SESSIONS_PATH:
                self._json(200, self._session_create(form))
            elif method == "GET" and path.startswith(SESSIONS_PATH + "/"):
                self._session_get(path.removeprefix(SESSIONS_PATH + "/"))
            else:
                self._json(404, {"error": {"type": "invalid_request_error", "message": "?"}})

        def _session_create(self, form: dict[str, str]) -> dict[str, Any]:
            key = self.headers.get("Idempotency-Key", "")
            with fake.lock:
                if key in fake.idempotent:
                    return fake.sessions[fake.idempotent[key]]
                session = _session_new(form)
                fake.sessions[session["id"]] = session
                if key:
                    fake.idempotent[key] = session["id"]
                return session

        def _session_get(self, session_id: str) -> None:
            with fake.lock:
                session = fake.sessions.get(session_id)
            if session is None:
                error = {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "param": "session",
                    "message": f"No such checkout.session: '{session_id}'",
                }
                self._json(404, {"error": error})
            else:
                self._json(200, session)

        def _json(self, status: int, data: dict[str, Any]) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Request-Id", "req_fake_" + secrets.token_hex(6))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def fake_stripe_running() -> Iterator[FakeStripe]:
    """A fresh fake on a free port for the duration of the block."""
    fake = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll interval: shutdown() waits for it, once per test.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-stripe", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
