"""`manage.py retention`: show what the retention rules would remove; --apply removes it."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dsr.services.retention import retention_preview, retention_run_all


class Command(BaseCommand):
    help = "List what every retention rule of the registry would remove (add --apply to remove)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="remove the rows and files")
        parser.add_argument(
            "--rule", help="only this rule (a model label, e.g. accounts.RequestLog)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        previews = [
            p for p in retention_preview() if not options["rule"] or p.rule == options["rule"]
        ]
        width = max((len(p.rule) for p in previews), default=10)
        for p in previews:
            self.stdout.write(
                f"{p.rule:<{width}}  {p.due_rows:>10} due  "
                f"(older than {p.cutoff:%Y-%m-%d %H:%M} UTC; {p.description})"
            )
        if not options["apply"]:
            self.stdout.write("Dry run: nothing removed. Run with --apply to remove.")
            return
        totals = {p.rule: max(p.due_rows, 1) for p in previews}
        started = time.monotonic()

        def progress(rule: str, done: int) -> None:
            total = totals.get(rule, done) or 1
            filled = min(30, int(30 * done / total))
            sys.stdout.write(
                f"\r{rule:<{width}} [{'#' * filled}{'.' * (30 - filled)}] "
                f"{done}/{total} {time.monotonic() - started:6.1f}s"
            )
            sys.stdout.flush()

        runs = retention_run_all(progress=progress, force=True, only=options["rule"])
        sys.stdout.write("\n")
        for run in runs:
            self.stdout.write(
                f"{run.rule:<{width}}  {run.status:<8} removed {run.rows_removed} rows, "
                f"{run.files_removed} files, anonymised {run.rows_anonymised}; "
                f"kept for retry {run.rows_kept_for_retry}; still overdue {run.overdue_after}"
                + (f"\n    errors: {run.errors.strip()}" if run.errors else "")
            )
