"""erasure_vs_floor_ratio: the DSR erasure of a heavy subject (DSR-3)."""

from __future__ import annotations

from tests.bench.common import BenchContext, BenchResult


def erasure_vs_floor_ratio(ctx: BenchContext) -> BenchResult:
    raise NotImplementedError
