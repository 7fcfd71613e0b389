"""Admin: the marketing suppression list, read-only (keyed hashes of erased addresses)."""

from __future__ import annotations

from django.contrib import admin

from common.admin import ReadOnlyAdminMixin
from consent.models import MarketingSuppression


@admin.register(MarketingSuppression)
class MarketingSuppressionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Only a prefix of each hash is shown: the list is evidence, not a lookup tool."""

    list_display = ("hash_prefix", "created_at", "source")
    list_filter = ("source",)
    date_hierarchy = "created_at"
    fields = ("hash_prefix", "created_at", "source")
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="hash (prefix)")
    def hash_prefix(self, obj: MarketingSuppression) -> str:
        return obj.email_hash[:12] + "…"
