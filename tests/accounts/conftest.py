"""Fixtures local to the accounts tests."""

from __future__ import annotations

import pytest

from accounts.models import User
from tests.factories import UserFactory


@pytest.fixture
def superuser(db) -> User:
    return UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
