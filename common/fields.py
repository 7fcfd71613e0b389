"""Marking a field as personal data, so the registry check cannot miss it (ACC-6)."""

from __future__ import annotations

from typing import TypeVar

from django.db import models

F = TypeVar("F", bound=models.Field)


def personal(field: F) -> F:
    """Mark *field* as personal: its model must be declared in the registry."""
    field.personal_data = True  # type: ignore[attr-defined]
    return field
