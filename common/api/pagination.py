"""Cursor pagination: stable under inserts, and no COUNT(*) over a customer's history."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class NewestFirstCursor(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
