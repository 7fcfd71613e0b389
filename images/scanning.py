"""Malware scanning through clamd's INSTREAM command (IMG-5).

Written by hand: the protocol is a few lines (length-prefixed chunks, one reply line) and
the PyPI clients are unmaintained. Fail closed: a scanner that is configured but down or
slow raises ScannerUnavailable, and the caller keeps the upload quarantined for a retry.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from enum import Enum

from django.conf import settings

CHUNK = 64 * 1024


class ScanOutcome(Enum):
    CLEAN = "clean"
    INFECTED = "infected"
    NOT_CONFIGURED = "not_configured"


@dataclass(frozen=True)
class ScanReport:
    outcome: ScanOutcome
    signature: str = ""


class ScannerUnavailable(Exception):
    """clamd is configured but did not answer in time (or answered with an error)."""


def _connect(address: str, timeout: float) -> socket.socket:
    if ":" in address and not address.startswith("/"):
        host, port = address.rsplit(":", 1)
        return socket.create_connection((host, int(port)), timeout=timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(address)
    return sock


def _reply(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\0"):
        part = sock.recv(4096)
        if not part:
            break
        data += part
    return data.rstrip(b"\0").decode("utf-8", "replace").strip()


def scan_bytes(data: bytes, *, address: str | None = None) -> ScanReport:
    address = settings.CLAMD_ADDRESS if address is None else address
    if not address:
        return ScanReport(ScanOutcome.NOT_CONFIGURED)
    try:
        with _connect(address, settings.CLAMD_TIMEOUT) as sock:
            sock.sendall(b"zINSTREAM\0")
            view = memoryview(data)
            for start in range(0, len(view), CHUNK):
                chunk = view[start : start + CHUNK]
                sock.sendall(struct.pack("!L", len(chunk)) + chunk)
            sock.sendall(struct.pack("!L", 0))
            reply = _reply(sock)
    except OSError as exc:  # refused, reset, timed out
        raise ScannerUnavailable(f"clamd at {address}: {exc.__class__.__name__}") from exc
    # "stream: OK" or "stream: Eicar-Test-Signature FOUND"; anything else is an error.
    if reply.endswith("FOUND"):
        signature = reply.removeprefix("stream:").removesuffix("FOUND").strip()
        return ScanReport(ScanOutcome.INFECTED, signature)
    if reply.endswith("OK"):
        return ScanReport(ScanOutcome.CLEAN)
    raise ScannerUnavailable(f"clamd at {address} answered {reply[:80]!r}")
