"""export_vs_floor_ratio and export_peak_mib: the DSR export of a heavy subject (DSR-1)."""

from __future__ import annotations

from tests.bench.common import BenchContext, BenchResult


def export_vs_floor_ratio(ctx: BenchContext) -> BenchResult:
    raise NotImplementedError


def export_peak_mib(ctx: BenchContext) -> BenchResult:
    raise NotImplementedError
