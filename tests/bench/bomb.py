"""bomb_reject_ms and bomb_reject_peak_mib: a decompression bomb refused from its header.

The bomb is a 65-byte PNG built by hand (signature, an IHDR declaring 100000 x 100000
RGB with a correct CRC, an empty IDAT, IEND): decoded it would need 30 GB.
common.imaging.inspect_header must refuse it (ImageRejected) without decoding, under the
upload limits of the settings.

* bomb_reject_ms: median milliseconds per refusal over many, after a warm-up (Pillow's
  PNG plugin imported).
* bomb_reject_peak_mib: in a fresh Python process that has imported Pillow and the
  intake and refused one bomb already, the RSS high-water mark (VmHWM, reset first)
  minus the RSS before refusing it again (page-granular: 0 means under one page of
  growth); the details add tracemalloc's peak for the Python heap during one more.
"""

from __future__ import annotations

import json
import statistics
import struct
import subprocess
import sys
import time
import zlib

from common.imaging import ImageLimits, ImageRejected, inspect_header
from tests.bench.common import BenchContext, BenchResult

TIME_NAME = "bomb_reject_ms"
PEAK_NAME = "bomb_reject_peak_mib"
TIME_GOAL = "< 10"
PEAK_GOAL = "< 20"
SIDE = 100_000
REPEATS, QUICK_REPEATS = 2000, 200


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def bomb_png(width: int = SIDE, height: int = SIDE) -> bytes:
    """A valid-looking PNG header declaring width x height 8-bit RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )


def upload_limits() -> ImageLimits:
    """The upload limits from settings (defaults when a setting is missing)."""
    from django.conf import settings

    return ImageLimits(
        max_bytes=getattr(settings, "UPLOAD_MAX_BYTES", 25 * 1024 * 1024),
        max_pixels=getattr(settings, "UPLOAD_MAX_PIXELS", 50_000_000),
        max_side=getattr(settings, "UPLOAD_MAX_SIDE", 12_000),
        max_aspect=getattr(settings, "UPLOAD_MAX_ASPECT", 20.0),
    )


def refuse(data: bytes, limits: ImageLimits) -> str:
    """inspect_header's message for *data*; RuntimeError if it was accepted."""
    try:
        inspect_header(data, limits)
    except ImageRejected as exc:
        return exc.message
    raise RuntimeError("the bomb was not refused")


def bomb_reject_ms(ctx: BenchContext) -> BenchResult:
    data, limits = bomb_png(), upload_limits()
    message = refuse(data, limits)
    times = []
    for _ in range(QUICK_REPEATS if ctx.quick else REPEATS):
        started = time.perf_counter()
        refuse(data, limits)
        times.append(time.perf_counter() - started)
    times.sort()
    return BenchResult(
        name=TIME_NAME,
        value=round(statistics.median(times) * 1000, 4),
        unit="ms",
        goal=TIME_GOAL,
        details={
            "bomb_bytes": len(data),
            "declared": f"{SIDE}x{SIDE} RGB",
            "p99_ms": round(times[int(len(times) * 0.99) - 1] * 1000, 4),
            "max_ms": round(times[-1] * 1000, 4),
            "message": message,
        },
    )


_PEAK_SCRIPT = """
import json, os, tracemalloc
import django
django.setup()
from tests.bench.bomb import bomb_png, refuse, upload_limits
def status_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)
data, limits = bomb_png(), upload_limits()
refuse(data, limits)  # warm-up: Pillow's plugins imported
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
before = status_kib("VmRSS")
refuse(data, limits)
peak = status_kib("VmHWM")
tracemalloc.start()
refuse(data, limits)
python_peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"before_kib": before, "peak_kib": peak, "python_peak_bytes": python_peak}))
"""


def bomb_reject_peak_mib(ctx: BenchContext) -> BenchResult:
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT],
        cwd=ctx.root,
        env=ctx.env,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    peak = (report["peak_kib"] - report["before_kib"]) / 1024
    return BenchResult(
        name=PEAK_NAME,
        value=round(peak, 2),
        unit="MiB",
        goal=PEAK_GOAL,
        details={
            "method": "VmHWM - VmRSS around one refusal in a fresh warmed-up process",
            "baseline_mib": round(report["before_kib"] / 1024, 1),
            "python_heap_peak_kib": round(report["python_peak_bytes"] / 1024, 1),
        },
    )
