"""api_orders_vs_bare_ratio: a customer's order list over the API against DRF doing nothing.

One verified customer with 200 orders (and other customers' orders around them) and a
personal API token. GET /api/v1/orders/ (the first page, as an app opens the list) is
loaded on the same gunicorn, at the same concurrency, in alternating rounds with
/__bench__/bare-api/: a DRF view without authentication, permission or throttles that
answers from memory the body captured once from the real endpoint at start-up (checked
byte-identical). The headline is the median of the rounds' rps ratios; the API's p99 has
its own goal.

A third load, /__bench__/bare-api-auth/ (the same body, with the API's default token
auth, permission and throttles), shows what every API call pays before its own work; an
in-process breakdown after the load says where the list's own time goes and how many
queries a request makes (details.breakdown_ms).

The user throttle stays on with a rate that is never reached, per second ("100000/s"):
DRF keeps one timestamp per request in the window, so a one-second window holds about
as many as the load makes in a second, fewer than a client at the real 600/min carries.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from tests.bench.common import BenchContext, BenchResult, Check, log
from tests.bench.profile_page import _check_clean, _median, _setup_from_env
from tests.bench.server import Server, gunicorn, load

NAME = "api_orders_vs_bare_ratio"
BARE_PATH = "/__bench__/bare-api/"
BARE_AUTH_PATH = "/__bench__/bare-api-auth/"
CONCURRENCY = 20
RATIO_GOAL = ">= 0.4"
P99_GOAL_MS = "< 50"
ORDERS = 200
OTHER_CUSTOMERS = 4
ORDER = ("bare", "bare_auth", "api")
THROTTLE_RATE = "100000/s"
MAX_REQUESTS = 200_000
BREAKDOWN_REPEAT, BREAKDOWN_QUICK_REPEAT = 60, 15


def _seed() -> tuple[Any, str, list[str]]:
    """The bench customer, their token secret, and their orders' references newest first."""
    from django.utils import timezone

    from accounts.models import ApiToken, User
    from images.models import Photo, PhotoStatus, ScanVerdict
    from images.passport_specs import DOCUMENT_SPECS
    from orders.models import Order, OrderKind, OrderStatus
    from tests.factories import UserFactory

    user = cast(User, UserFactory(email="api-orders-bench@example.com", full_name="Api Bench"))
    others = [cast(User, UserFactory()) for _ in range(OTHER_CUSTOMERS)]
    documents = sorted(DOCUMENT_SPECS)
    now = timezone.now()
    # Oldest first, so the newest orders are the open ones, as in a real history.
    statuses = [OrderStatus.CLOSED] * 8 + [OrderStatus.DELIVERED] * 6 + [OrderStatus.CANCELLED]
    recent = [
        OrderStatus.DRAFT,
        OrderStatus.SUBMITTED,
        OrderStatus.PAID,
        OrderStatus.IN_PROGRESS,
        OrderStatus.READY_FOR_REVIEW,
        OrderStatus.REVISION_REQUESTED,
        OrderStatus.DELIVERED,
    ]

    def status_of(n: int) -> str:
        tail = n - (ORDERS - len(recent))
        return recent[tail] if tail >= 0 else statuses[n % len(statuses)]

    def photos_of(n: int) -> int:
        return 1 if n % 10 >= 7 else 1 + n % 4

    def order(owner: Any, n: int) -> Any:
        status = status_of(n)
        passport = n % 10 >= 7
        done = status in (OrderStatus.DELIVERED, OrderStatus.CLOSED)
        paid = done or status in (
            OrderStatus.PAID,
            OrderStatus.IN_PROGRESS,
            OrderStatus.READY_FOR_REVIEW,
            OrderStatus.REVISION_REQUESTED,
        )
        created = now - timedelta(days=(ORDERS - n) * 3.5)
        return Order(
            kind=OrderKind.PASSPORT if passport else OrderKind.RETOUCH,
            status=status,
            customer=owner,
            document=documents[n % len(documents)] if passport else "",
            instructions="" if passport else f"Brighten the faces and remove the glare ({n}).",
            amount_minor=700 if passport else 900 * photos_of(n),
            currency="EUR",
            revision_round=1 if status == OrderStatus.REVISION_REQUESTED else 0,
            created_at=created,
            last_edited_at=created + timedelta(days=2) if done else created,
            submitted_at=None if status == OrderStatus.DRAFT else created + timedelta(hours=1),
            paid_at=created + timedelta(hours=1) if paid else None,
            delivered_at=created + timedelta(days=2) if done else None,
            closed_at=created + timedelta(days=16) if status == OrderStatus.CLOSED else None,
            cancelled_at=created + timedelta(days=1) if status == OrderStatus.CANCELLED else None,
        )

    mine = [order(user, n) for n in range(ORDERS)]
    theirs = [order(o, n) for o in others for n in range(ORDERS)]
    rows = mine + theirs
    created = [row.created_at for row in rows]
    Order.objects.bulk_create(rows, batch_size=500)
    # created_at is auto_now_add (bulk_create stamped "now"); bulk_update writes the history.
    for row, when in zip(rows, created, strict=True):
        row.created_at = when
    Order.objects.bulk_update(rows, ["created_at"], batch_size=500)
    photos = [
        Photo(
            order=row,
            position=p,
            file=f"o/{row.storage_token}/p/{p}.jpg",
            status=PhotoStatus.READY,
            scan=ScanVerdict.CLEAN,
            size_bytes=2_400_000,
            width=3000,
            height=4000,
        )
        for n, row in enumerate(mine)
        for p in range(photos_of(n))
    ]
    Photo.objects.bulk_create(photos, batch_size=1000)
    _row, secret = ApiToken.objects.create(user=user, name="bench")
    newest = list(
        Order.objects.filter(customer=user)
        .order_by("-created_at", "-id")
        .values_list("reference", flat=True)
    )
    log(f"seeded {len(mine)} orders ({len(photos)} photos) + {len(theirs)} of others")
    return user, str(secret), newest


def _get(server: Server, path: str, token: str) -> tuple[int, bytes, float]:
    request = urllib.request.Request(
        server.url(path), headers={"Authorization": f"Token {token}", "Accept": "application/json"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
        return int(response.status), body, (time.perf_counter() - started) * 1000


def _first_page(server: Server, path: str, token: str, newest: list[str]) -> dict[str, Any]:
    status, body, _ms = _get(server, path, token)
    data = json.loads(body)
    results = data.get("results") if isinstance(data, dict) else None
    if status != 200 or not isinstance(results, list) or not results:
        raise RuntimeError(f"{path} did not answer a page of orders: {status} {body[:300]!r}")
    if newest[0].encode() not in body:
        raise RuntimeError(f"{path}: the first page does not start with the newest order")
    if not data.get("next"):
        raise RuntimeError(f"{path}: {ORDERS} orders but no next page")
    return {"body": body, "page_size": len(results), "keys": sorted(results[0])}


def _full_page(server: Server, path: str, token: str) -> dict[str, Any]:
    status, body, ms = _get(server, f"{path}?page_size=100", token)
    data = json.loads(body) if status == 200 else {}
    return {
        "status": status,
        "items": len(data.get("results", [])),
        "body_bytes": len(body),
        "single_request_ms": round(ms, 2),
    }


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 3)


def _breakdown(user: Any, token: str, api_path: str, quick: bool) -> dict[str, Any]:
    """Where one list request spends its time, in this process (no HTTP, no concurrency)."""
    from django.conf import settings
    from django.db import connection
    from django.test import override_settings
    from django.test.utils import CaptureQueriesContext
    from django.urls import resolve
    from knox.crypto import hash_token
    from rest_framework.renderers import JSONRenderer
    from rest_framework.request import Request
    from rest_framework.test import APIClient, APIRequestFactory

    from common.api.authentication import ApiTokenAuthentication
    from common.api.throttles import UserThrottle

    repeat = BREAKDOWN_QUICK_REPEAT if quick else BREAKDOWN_REPEAT
    rates = dict.fromkeys(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], THROTTLE_RATE)
    header = f"Token {token}"
    with override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        client = APIClient(HTTP_HOST="127.0.0.1")
        client.credentials(HTTP_AUTHORIZATION=header)
        factory = APIRequestFactory()
        raw = factory.get(api_path, HTTP_AUTHORIZATION=header, HTTP_HOST="127.0.0.1")
        result: dict[str, Any] = {}

        def request() -> Request:
            drf = Request(factory.get(api_path, HTTP_AUTHORIZATION=header, HTTP_HOST="127.0.0.1"))
            drf.user = user
            return drf

        throttled = request()

        parts: dict[str, Callable[[], object]] = {
            "knox_sha512_ms": lambda: hash_token(token),
            "token_auth_ms": lambda: ApiTokenAuthentication().authenticate(Request(raw)),
            "user_throttle_ms": lambda: UserThrottle().allow_request(throttled, None),
        }
        view_cls = getattr(resolve(api_path).func, "cls", None)
        view: Any = view_cls() if view_cls is not None else None
        if view is not None and hasattr(view, "paginate_queryset"):
            view.request, view.args, view.kwargs, view.format_kwarg = request(), (), {}, None

            def page() -> list[Any]:
                return list(view.paginate_queryset(view.filter_queryset(view.get_queryset())))

            rows = page()
            data = view.get_serializer(rows, many=True).data
            body = view.get_paginated_response(data).data
            parts["queryset_page_ms"] = page
            parts["serialize_ms"] = lambda: view.get_serializer(rows, many=True).data
            parts["render_ms"] = lambda: JSONRenderer().render(body)
        else:
            result["view_note"] = f"{view_cls!r} is not a generic list view: parts skipped"
        parts["whole_request_ms"] = lambda: client.get(api_path)
        parts["bare_auth_request_ms"] = lambda: client.get(BARE_AUTH_PATH)
        anonymous = APIClient(HTTP_HOST="127.0.0.1")
        parts["bare_request_ms"] = lambda: anonymous.get(BARE_PATH)
        for name, fn in parts.items():
            try:
                result[name] = _median_ms(fn, repeat)
            except Exception as exc:  # one part failing must not hide the others
                result[name] = f"{type(exc).__name__}: {exc}"
        for label, path in (("", api_path), ("_page_size_100", f"{api_path}?page_size=100")):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(path)
            result[f"queries_per_request{label}"] = len(queries)
            result[f"status{label}"] = response.status_code
            if not label:
                result["queries"] = [
                    f"{q['time']} s: {q['sql'][:160]}" for q in queries.captured_queries
                ]
    result["repeat"] = repeat
    result["note"] = (
        "medians in this process (no HTTP); token_auth_ms includes knox_sha512_ms and its "
        "queries; whole_request_ms - bare_auth_request_ms is the list's own work "
        "(queryset_page_ms + serialize_ms + pagination); render_ms is paid by the bare "
        "views too"
    )
    return result


def api_orders_vs_bare_ratio(ctx: BenchContext) -> BenchResult:
    from django.urls import reverse

    api_path = reverse("api:orders-list")
    user, token, newest = _seed()
    setup = _setup_from_env()
    duration, warmup, rounds = (2.0, 0.5, 1) if ctx.quick else (5.0, 1.0, 3)
    body_file = ctx.var / "api_orders_body.json"
    body_file.unlink(missing_ok=True)
    env = {**ctx.env, "BENCH_API_BODY": str(body_file), "API_THROTTLE_USER": THROTTLE_RATE}
    server_ctx = dataclasses.replace(ctx, env=env)
    headers = [f"Authorization: Token {token}"]
    expect = f'"{newest[0]}"'

    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in ORDER}
    with gunicorn(server_ctx, setup, name=NAME) as server:
        first = _first_page(server, api_path, token, newest)
        _write_atomic(body_file, first["body"])
        for path in (BARE_PATH, BARE_AUTH_PATH):
            _status, same, _ms = _get(server, path, token)
            if same != first["body"]:
                raise RuntimeError(f"{path} does not answer the captured body byte for byte")
        full = _full_page(server, api_path, token)
        targets = {"bare": BARE_PATH, "bare_auth": BARE_AUTH_PATH, "api": api_path}
        for i in range(rounds):
            # Alternate the order, so drift in the machine's load hits all alike.
            for key in ORDER if i % 2 == 0 else ORDER[::-1]:
                result = load(
                    ctx,
                    server,
                    targets[key],
                    headers=headers,
                    concurrency=CONCURRENCY,
                    duration=duration,
                    warmup=warmup,
                    max_requests=MAX_REQUESTS,
                    expect_body=expect,
                )
                _check_clean(key, result)
                runs[key].append(result)
                log(
                    f"  round {i + 1}/{rounds} {key:10s}: {result['rps']:8.1f} rps  "
                    f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms"
                )
        pid = server.pid

    os.environ["BENCH_API_BODY"] = str(body_file)  # for the bare views in this process
    try:
        breakdown = _breakdown(user, token, api_path, ctx.quick)
    except Exception as exc:  # the breakdown explains; it must not lose the measurement
        breakdown = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        os.environ.pop("BENCH_API_BODY", None)
    log(f"  in-process breakdown: {breakdown}")

    bare, bare_auth, api = runs["bare"], runs["bare_auth"], runs["api"]
    ratios = [a["rps"] / b["rps"] for b, a in zip(bare, api, strict=True)]
    auth_ratios = [a["rps"] / b["rps"] for b, a in zip(bare, bare_auth, strict=True)]
    p99 = _median(api, "p99_ms")
    details: dict[str, Any] = {
        "bare_rps": _median(bare, "rps"),
        "api_rps": _median(api, "rps"),
        "bare_p50_ms": _median(bare, "p50_ms"),
        "bare_p99_ms": _median(bare, "p99_ms"),
        "api_p50_ms": _median(api, "p50_ms"),
        "api_p99_ms": p99,
        "round_ratios": [round(r, 3) for r in ratios],
        "bare_auth_rps": _median(bare_auth, "rps"),
        "bare_auth_p50_ms": _median(bare_auth, "p50_ms"),
        "bare_auth_p99_ms": _median(bare_auth, "p99_ms"),
        "bare_auth_vs_bare_ratio": round(statistics.median(auth_ratios), 3),
        "page_size": first["page_size"],
        "item_fields": first["keys"],
        "body_bytes": len(first["body"]),
        "page_size_100": full,
        "customer_orders": ORDERS,
        "other_orders": ORDERS * OTHER_CUSTOMERS,
        "throttle_rate": THROTTLE_RATE,
        "concurrency": CONCURRENCY,
        "duration_s": duration,
        "warmup_s": warmup,
        "rounds": rounds,
        "worker_setup": setup.as_dict(),
        "server": f"gunicorn tests.bench.wsgi (pid {pid}, DEBUG off, loopback)",
        "loadgen": bare[0].get("loadgen", ""),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "requests": {
            "bare": f"GET {BARE_PATH}: DRF, no auth/permission/throttle, the body from memory",
            "bare_auth": f"GET {BARE_AUTH_PATH}: the same with the API's default auth/throttles",
            "api": f"GET {api_path} (first page) with the customer's token",
        },
        "breakdown_ms": breakdown,
        "raw": runs,
    }
    return BenchResult(
        name=NAME,
        value=round(statistics.median(ratios), 3),
        unit="x",
        goal=RATIO_GOAL,
        details=details,
        extra_checks=[Check("api_p99_ms", p99, "ms", P99_GOAL_MS)],
    )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
