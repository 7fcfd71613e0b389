"""Cursor pagination: stable under inserts, and no COUNT(*) over a customer's history."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class SafeCursor(CursorPagination):
    """DRF puts a cursor's position into .filter() unchecked: a forged one ("p=abc" on a
    number or date column) would be a 500 or a 400; it is the documented 404 instead."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, ValidationError) as exc:
            raise NotFound(self.invalid_cursor_message) from exc


class NewestFirstCursor(SafeCursor):
    ordering = ("-created_at", "-id")
