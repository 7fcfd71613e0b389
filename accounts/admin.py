from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import AuditEvent, Notification, User
from accounts.services.staff import user_update_by_staff
from common.http import client_ip

PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


class VerifiedFilter(admin.SimpleListFilter):
    title = "email verified"
    parameter_name = "verified"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Verified"), ("no", "Not verified")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        if self.value() == "yes":
            return queryset.filter(email_verified_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(email_verified_at__isnull=True)
        return queryset


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """Staff never see the password hash: the field is not in any form or list."""

    list_display = (
        "email",
        "full_name",
        "country",
        "is_verified",
        "is_staff",
        "is_active",
        "created_at",
    )
    list_filter = (VerifiedFilter, "is_staff", "is_active", "groups", "country")
    search_fields = ("email", "full_name", "company_name")
    ordering = ("-created_at",)
    readonly_fields = (
        "email_verified_at",
        "age_confirmed_at",
        "pending_email",
        "last_login",
        "created_at",
        "updated_at",
    )
    filter_horizontal = ("groups", "user_permissions")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = (
        (None, {"fields": ("email", "full_name", "phone", "country")}),
        (
            "Profile",
            {
                "fields": (
                    "company_name",
                    "website",
                    "street_address",
                    "city",
                    "region",
                    "postal_code",
                    "preferred_currency",
                    "vat_id",
                )
            },
        ),
        (
            "Account",
            {
                "fields": (
                    "is_active",
                    "email_verified_at",
                    "pending_email",
                    "age_confirmed_at",
                    "last_login",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        ("Staff access", {"fields": PRIVILEGE_FIELDS}),
    )

    @admin.display(boolean=True, description="verified")
    def is_verified(self, obj: User) -> bool:
        return obj.email_verified_at is not None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += PRIVILEGE_FIELDS  # no one grants themselves more rights
        return fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people sign up themselves; staff accounts via createsuperuser/demo

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a person is an erasure: it goes through a data-subject-rights ticket.
        return False

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        user_update_by_staff(
            actor=cast(User, request.user),
            user=obj,
            changed_fields=list(form.changed_data),
            ip_address=client_ip(request),
        )


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("title", "user", "created_at", "read_at")
    list_select_related = ("user",)
    search_fields = ("user__email", "title")
    list_filter = ("read_at",)
    raw_id_fields = ("user",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "actor", "subject", "ip_address")
    list_filter = ("action",)
    list_select_related = ("actor", "subject")
    search_fields = ("actor__email", "subject__email", "ip_address")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
