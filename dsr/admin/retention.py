from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from common.admin import ReadOnlyAdminMixin
from dsr.models import PersonalDataMap, RetentionRun
from dsr.registry import Category, registry


@admin.register(RetentionRun)
class RetentionRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "rule",
        "started_at",
        "status",
        "rows_removed",
        "files_removed",
        "rows_anonymised",
        "rows_kept_for_retry",
        "overdue_after",
        "duration",
    )
    list_filter = ("status", "rule")
    date_hierarchy = "started_at"

    @admin.display(description="duration (s)")
    def duration(self, obj: RetentionRun) -> str:
        return "-" if obj.duration_s is None else f"{obj.duration_s:.2f}"


def registry_rows() -> list[dict[str, Any]]:
    from consent.selectors import processing_purposes

    labels = dict(Category.choices)
    purposes = processing_purposes()
    rows = []
    for entry in registry:
        info = purposes.get(entry.purpose)
        purpose = info.name if info else entry.purpose
        basis = info.basis_text if info else "?"
        rows.append(
            {
                "label": entry.label,
                "name": entry.model._meta.verbose_name_plural,
                "description": entry.description,
                "subject": (
                    "the user"
                    if entry.subject == ""
                    else f"user via {entry.subject}"
                    if entry.subject
                    else f"email in {entry.subject_email}"
                    if entry.subject_email
                    else entry.subject_note
                ),
                "fields": [(f, labels.get(c, c)) for f, c in entry.fields.items()],
                "categories": [labels.get(c, c) for c in entry.categories],
                "purpose": purpose,
                "basis": basis,
                "export": ", ".join(entry.export_fields) or "nothing",
                "erasure": entry.erasure.describe(),
                "retention": entry.retention_describe()
                if entry.retention
                else "kept while needed for the purpose; removed on erasure",
                "files": ", ".join(entry.file_fields),
            }
        )
    return rows


@admin.register(PersonalDataMap)
class PersonalDataMapAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The data map: every declared model, read-only (TRN-1's source)."""

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Personal-data registry",
            "rows": registry_rows(),
            "exemptions": sorted(registry.exemptions().items()),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/dsr/registry.html", context)
