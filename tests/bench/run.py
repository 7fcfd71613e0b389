"""Run the benchmarks: ``python -m tests.bench.run [--only NAME] [--quick]`` (``make bench``).

Each benchmark is a function ``(BenchContext) -> BenchResult`` in its own module under
tests/bench/, registered below by one line. Results go to var/bench/results.json as
``{"benchmarks": [{"name", "value", "unit", "goal", "passed", ...details}]}``; with
--only, the file is merged (that benchmark's entry replaced, the others kept).

A missed goal is a measurement, not a failure: the exit code is still 0 (MISSED is
printed). The exit code is 1 only when a benchmark could not run at all.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench import (
    api_orders,
    bomb,
    breach,
    breach_kill,
    campaign,
    dsr_erasure,
    dsr_export,
    passport,
    passport_task,
    profile_page,
    purge,
    request_log,
    retouch,
)
from tests.bench.common import (
    RESULTS_PATH,
    BenchContext,
    BenchFn,
    BenchResult,
    cleanup,
    log,
    prepare,
)

BENCHMARKS: dict[str, BenchFn] = {
    "profile_vs_bare_ratio": profile_page.profile_vs_bare_ratio,
    "request_log_overhead_ratio": request_log.request_log_overhead_ratio,
    "purge_vs_raw_delete_ratio": purge.purge_vs_raw_delete_ratio,
    "passport_vs_decode_ratio": passport.passport_vs_decode_ratio,
    "passport_vs_djpeg_ratio": passport.passport_vs_djpeg_ratio,
    "passport_images_per_s": passport.passport_images_per_s,
    "passport_peak_mib": passport.passport_peak_mib,
    "passport_task_vs_bare_ratio": passport_task.passport_task_vs_bare_ratio,
    "retouch_vs_pyvips_ratio": retouch.retouch_vs_pyvips_ratio,
    "bomb_reject_ms": bomb.bomb_reject_ms,
    "bomb_reject_peak_mib": bomb.bomb_reject_peak_mib,
    "campaign_vs_smtplib_ratio": campaign.campaign_vs_smtplib_ratio,
    "export_vs_floor_ratio": dsr_export.export_vs_floor_ratio,
    "export_peak_mib": dsr_export.export_peak_mib,
    "erasure_vs_floor_ratio": dsr_erasure.erasure_vs_floor_ratio,
    "breach_scope_vs_insert_ratio": breach.breach_scope_vs_insert_ratio,
    "breach_email_vs_smtplib_ratio": breach.breach_email_vs_smtplib_ratio,
    "breach_kill_duplicates": breach_kill.breach_kill_duplicates,
    "breach_kill_misses": breach_kill.breach_kill_misses,
    "api_orders_vs_bare_ratio": api_orders.api_orders_vs_bare_ratio,
}


def _load_existing(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    entries = data.get("benchmarks") if isinstance(data, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def write_results(path: Path, entries: list[dict[str, Any]], *, merge: bool) -> None:
    """Write the results; merge=True keeps other benchmarks' entries already in the file."""
    by_name: dict[str, dict[str, Any]] = {}
    if merge:
        by_name = {str(e.get("name")): e for e in _load_existing(path)}
    for entry in entries:
        by_name[entry["name"]] = entry
    order = [name for name in BENCHMARKS if name in by_name]
    order += sorted(name for name in by_name if name not in BENCHMARKS)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"benchmarks": [by_name[n] for n in order]}, indent=2) + "\n")
    tmp.replace(path)


def _status(entry: dict[str, Any]) -> str:
    if "error" in entry:
        return "ERROR"
    return "ok" if entry["passed"] else "MISSED"


def _fmt(value: Any) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def print_table(entries: list[dict[str, Any]]) -> None:
    rows = [("benchmark", "value", "unit", "goal", "status")]
    for e in entries:
        rows.append(
            (
                e["name"],
                _fmt(e.get("value")),
                str(e.get("unit", "")),
                str(e.get("goal", "")),
                _status(e),
            )
        )
        for check in e.get("checks", [])[1:]:
            rows.append(
                (
                    f"  {check['what']}",
                    _fmt(check["value"]),
                    check["unit"],
                    check["goal"],
                    "ok" if check["passed"] else "MISSED",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * width for width in widths))
    print(flush=True)


def run_one(name: str, fn: BenchFn, ctx: BenchContext) -> dict[str, Any]:
    print(f"[{name}] running...", flush=True)
    started = time.monotonic()
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        result: BenchResult = fn(ctx)
    except Exception as exc:
        traceback.print_exc()
        entry: dict[str, Any] = {
            "name": name,
            "value": None,
            "unit": "",
            "goal": "",
            "passed": False,
            "error": f"{type(exc).__name__}: {exc}",
        }
    else:
        entry = result.as_dict()
    entry["measured_at"] = stamp
    entry["elapsed_s"] = round(time.monotonic() - started, 1)
    if "error" in entry:
        print(f"[{name}] ERROR: {entry['error']}", flush=True)
    else:
        verdict = "ok" if entry["passed"] else "MISSED"
        print(
            f"[{name}] {_fmt(entry['value'])} {entry['unit']} (goal {entry['goal']}): {verdict}",
            flush=True,
        )
        for check in entry.get("checks", [])[1:]:
            state = "ok" if check["passed"] else "MISSED"
            print(
                f"[{name}]   {check['what']} {_fmt(check['value'])} {check['unit']} "
                f"(goal {check['goal']}): {state}",
                flush=True,
            )
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks.")
    parser.add_argument("--only", metavar="NAME", help=f"one of: {', '.join(BENCHMARKS)}")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short runs (a smoke test of the harness, not a measurement)",
    )
    args = parser.parse_args(argv)
    # A unique prefix names a benchmark too (ONLY=campaign).
    prefixed = [name for name in BENCHMARKS if args.only and name.startswith(args.only)]
    if args.only and args.only not in BENCHMARKS and len(prefixed) == 1:
        args.only = prefixed[0]
    if args.only and args.only not in BENCHMARKS:
        print(f"unknown benchmark {args.only!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    selected = {args.only: BENCHMARKS[args.only]} if args.only else dict(BENCHMARKS)

    ctx = prepare(quick=args.quick)
    entries: list[dict[str, Any]] = []
    try:
        for name, fn in selected.items():
            entry = run_one(name, fn, ctx)
            if args.quick:
                entry["quick"] = True
            entries.append(entry)
            # Written after each one, so an interrupted run keeps what it measured.
            write_results(RESULTS_PATH, entries, merge=bool(args.only))
    finally:
        cleanup(ctx)
    print_table(entries)
    log(f"results in {RESULTS_PATH}")
    missed = [e["name"] for e in entries if _status(e) == "MISSED"]
    if missed:
        print(f"MISSED: {', '.join(missed)} (a measurement: the exit code stays 0)")
    errors = [e["name"] for e in entries if "error" in e]
    if errors:
        print(f"ERROR: {', '.join(errors)} could not run", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # SIGTERM (e.g. from scripts/testenv.py) unwinds like Ctrl-C, so every finally block
    # runs and the gunicorn this started is stopped rather than orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
