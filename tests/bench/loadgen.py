"""A small closed-loop HTTP/1.1 load generator: N keep-alive connections over loopback.

Run as its own process (``python -m tests.bench.loadgen ...``) so that it never shares an
interpreter (or a GIL) with what it measures; it prints one JSON object on stdout.

Each connection sends a GET, reads the whole response, and sends the next one at once
(closed loop: the offered load is ``concurrency`` requests in flight). A server that
answers ``Connection: close`` (gunicorn's sync worker) is reconnected, and the connect
time is part of that request's latency. Requests that *start* during the warm-up are
not recorded; the run stops at ``duration`` seconds after the warm-up or after
``max_requests`` recorded requests, whichever is first. Imports no Django, so it starts
in a few milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import socket
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_REQUESTS = 1_000_000


@dataclass
class Stats:
    latencies: array[float] = field(default_factory=lambda: array("d"))
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    connects: int = 0
    body_bytes: int = 0
    body_mismatches: int = 0
    last_finish: float = 0.0


@dataclass(frozen=True)
class Plan:
    host: str
    port: int
    request: bytes
    warm_end: float
    end: float
    max_requests: int
    expect_status: int
    expect_body: bytes | None


def build_request(host: str, port: int, path: str, headers: list[str]) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "User-Agent: pp-bench-loadgen",
        "Accept: text/html,*/*",
        "Connection: keep-alive",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(pct / 100.0 * len(sorted_values))))
    return sorted_values[rank - 1]


def summarize(latencies_s: list[float] | array[float], window_s: float) -> dict[str, float]:
    """rps and latency figures (milliseconds) for latencies in seconds over a window."""
    ordered = sorted(latencies_s)
    n = len(ordered)
    ms = 1000.0
    return {
        "requests": n,
        "window_s": round(window_s, 4),
        "rps": round(n / window_s, 2) if window_s > 0 else 0.0,
        "mean_ms": round(sum(ordered) / n * ms, 3) if n else 0.0,
        "p50_ms": round(percentile(ordered, 50) * ms, 3),
        "p90_ms": round(percentile(ordered, 90) * ms, 3),
        "p99_ms": round(percentile(ordered, 99) * ms, 3),
        "max_ms": round(ordered[-1] * ms, 3) if n else 0.0,
    }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep_alive) of one response; raises on a malformed or cut one."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, _, header_block = head.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"bad status line {status_line[:60]!r}")
    status = int(parts[1])
    length: int | None = None
    chunked = False
    keep_alive = parts[0] == b"HTTP/1.1"
    for line in header_block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value.strip())
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif key == b"connection":
            token = value.strip().lower()
            keep_alive = token == b"keep-alive" or (keep_alive and token != b"close")
    if chunked:
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                break
            body += await reader.readexactly(size + 2)
            del body[-2:]
        return status, bytes(body), keep_alive
    if length is not None:
        return status, await reader.readexactly(length), keep_alive
    return status, await reader.read(), False


async def _connection(plan: Plan, stats: Stats) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    clock = time.perf_counter
    try:
        while True:
            start = clock()
            if start >= plan.end or len(stats.latencies) >= plan.max_requests:
                return
            recording = start >= plan.warm_end
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(plan.host, plan.port)
                    sock = writer.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    stats.connects += 1
                writer.write(plan.request)
                status, body, keep_alive = await _read_response(reader)
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ValueError,
            ) as exc:
                if recording:
                    stats.errors[type(exc).__name__] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.01)  # do not spin on a server that is gone
                continue
            finish = clock()
            if recording:
                stats.statuses[status] += 1
                if status == plan.expect_status:
                    stats.latencies.append(finish - start)
                    stats.body_bytes += len(body)
                    if plan.expect_body is not None and plan.expect_body not in body:
                        stats.body_mismatches += 1
                stats.last_finish = max(stats.last_finish, finish)
            if not keep_alive:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


async def run_load(
    *,
    host: str,
    port: int,
    path: str,
    headers: list[str],
    concurrency: int,
    duration: float,
    warmup: float,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    expect_status: int = 200,
    expect_body: bytes | None = None,
) -> dict[str, Any]:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"the load generator only targets loopback addresses, not {host}")
    began = time.perf_counter()
    plan = Plan(
        host=host,
        port=port,
        request=build_request(host, port, path, headers),
        warm_end=began + warmup,
        end=began + warmup + duration,
        max_requests=max_requests,
        expect_status=expect_status,
        expect_body=expect_body,
    )
    stats = Stats()
    await asyncio.gather(*(_connection(plan, stats) for _ in range(concurrency)))
    window = max(stats.last_finish - plan.warm_end, 1e-9) if stats.latencies else duration
    result: dict[str, Any] = summarize(stats.latencies, window)
    non_expected = sum(n for code, n in stats.statuses.items() if code != expect_status)
    result.update(
        {
            "path": path,
            "concurrency": concurrency,
            "duration_s": duration,
            "warmup_s": warmup,
            "max_requests": max_requests,
            "statuses": {str(code): n for code, n in sorted(stats.statuses.items())},
            "errors": dict(stats.errors),
            "unexpected_status": non_expected,
            "body_mismatches": stats.body_mismatches,
            "connects": stats.connects,
            "mean_body_bytes": round(stats.body_bytes / len(stats.latencies))
            if stats.latencies
            else 0,
            "loadgen": "python-asyncio",
        }
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--max-requests", type=int, default=DEFAULT_MAX_REQUESTS)
    parser.add_argument("--expect-status", type=int, default=200)
    parser.add_argument(
        "--expect-body", default=None, help="a substring every expected response must contain"
    )
    args = parser.parse_args(argv)
    result = asyncio.run(
        run_load(
            host=args.host,
            port=args.port,
            path=args.path,
            headers=args.header,
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            max_requests=args.max_requests,
            expect_status=args.expect_status,
            expect_body=args.expect_body.encode() if args.expect_body else None,
        )
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
