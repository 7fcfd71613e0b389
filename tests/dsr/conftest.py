"""Fixtures for the dsr tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Callable[[], AbstractContextManager[Any]]:
    """``with committed():`` runs the on-commit callbacks (emails, tasks) at the block's end,
    as a real commit would; tasks run eagerly in unit tests."""

    def make() -> AbstractContextManager[Any]:
        return django_capture_on_commit_callbacks(execute=True)

    return make


@pytest.fixture
def autocommit(django_capture_on_commit_callbacks: Any) -> Iterator[None]:
    """Every on-commit callback of the test runs at its end (for tests that only look after)."""
    with django_capture_on_commit_callbacks(execute=True):
        yield
