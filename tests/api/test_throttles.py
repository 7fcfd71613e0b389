"""Throttles: a window per client opened at its first request, counted atomically in Redis."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache

from common.api.throttles import _hit, parse_rate, throttle_key


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [("10/min", (10, 60)), ("3/s", (3, 1)), ("5/hour", (5, 3600)), ("1/day", (1, 86400))],
)
def test_rates_parse(rate: str, parsed: tuple[int, int]) -> None:
    assert parse_rate(rate) == parsed


def _key() -> str:
    return throttle_key("test", f"ip:{uuid.uuid4().hex}")


def test_the_window_counts_and_says_how_long_it_has_left() -> None:
    key = _key()
    counts = [_hit(key, 60)[0] for _ in range(3)]
    assert counts == [1, 2, 3]
    _count, left = _hit(key, 60)
    assert 0 < left <= 60
    cache.delete(key)
    assert _hit(key, 60)[0] == 1, "deleting the key (as tests and staff may) resets it"


def test_concurrent_requests_are_each_counted_once() -> None:
    """DRF's read-modify-write history would lose updates here; INCR does not."""
    key = _key()
    with ThreadPoolExecutor(max_workers=16) as pool:
        counts = sorted(pool.map(lambda _i: _hit(key, 60)[0], range(64)))
    assert counts == list(range(1, 65))


def test_clients_have_separate_windows() -> None:
    one, two = _key(), _key()
    _hit(one, 60)
    _hit(one, 60)
    assert _hit(two, 60)[0] == 1
