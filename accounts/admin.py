from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from accounts.models import (
    PROFILE_FIELDS,
    ApiToken,
    AuditEvent,
    DailyUsage,
    Notification,
    RequestLog,
    User,
)
from accounts.services.requestlog import request_log_export_csv
from accounts.services.staff import user_update_by_staff
from accounts.services.tokens import api_token_revoke
from common.admin import ReadOnlyAdminMixin
from common.http import client_ip
from consent.models import ProcessingPurpose, Recipient

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
        (None, {"fields": ("email", *PROFILE_FIELDS)}),
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

    actions = ["report_child"]

    def has_report_child_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("dsr.report_child")

    @admin.action(description="Reported as under 13: erase now", permissions=["report_child"])
    def report_child(self, request: HttpRequest, queryset: QuerySet[User]) -> Any:
        """ACC-5: a confirmation page with how we learned it, then an erasure each, at once."""
        from dsr.services.erasure import dsr_child_report
        from dsr.services.tickets import TicketRefused

        note = (request.POST.get("note") or "").strip()
        if "confirm" not in request.POST or not note:
            context = {
                **self.admin_site.each_context(request),
                "title": "Report as a child's account and erase it now",
                "opts": self.model._meta,
                "users": queryset,
                "note": note,
                "missing_note": "confirm" in request.POST,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            status = 400 if "confirm" in request.POST else 200
            return TemplateResponse(
                request, "admin/accounts/user/report_child.html", context, status=status
            )
        for user in queryset:
            try:
                ticket = dsr_child_report(user=user, actor=cast(User, request.user), note=note)
            except TicketRefused as exc:
                self.message_user(request, f"{user.pk}: {exc.message}", level=messages.ERROR)
            else:
                self.message_user(
                    request, f"{ticket.reference}: account {user.pk} is being erased."
                )
        return None

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


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Customers' API tokens: support can see them and revoke them (audited), never the secret."""

    list_display = ("token_key", "name", "user", "created", "expiry", "last_used_at")
    list_select_related = ("user",)
    search_fields = ("user__email", "token_key", "name")
    fields = ("token_key", "name", "user", "created", "expiry", "last_used_at")
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # revoking is audited; a bare delete is not
        return actions

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        api_token_revoke(actor=cast(User, request.user), token=obj, ip_address=client_ip(request))

    @admin.action(description="Revoke the selected tokens", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        tokens = list(queryset.select_related("user"))
        for token in tokens:
            self.delete_model(request, token)
        self.message_user(request, f"{len(tokens)} token(s) revoked.", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "action", "actor", "subject", "ip_address")
    list_filter = ("action",)
    list_select_related = ("actor", "subject")
    search_fields = ("actor__email", "subject__email", "ip_address")
    date_hierarchy = "created_at"


class RequestLogExportForm(forms.Form):
    start = forms.DateTimeField(
        label="From (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    end = forms.DateTimeField(
        label="Until (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    ip_address = forms.GenericIPAddressField(label="Only this client address", required=False)
    reason = forms.CharField(
        label="Reason (incident, authority request)",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    # A hand-over to a third party is a disclosure, recorded with the export (DSR-5).
    recipient = forms.ModelChoiceField(
        label="Handed over to",
        queryset=Recipient.objects.filter(active=True),
        required=False,
        help_text="If the lines go to a third party (e.g. an authority after an attack), "
        "pick it: the disclosure is recorded. Add recipients in the processing register.",
    )
    purpose = forms.ModelChoiceField(
        label="Purpose of the hand-over",
        queryset=ProcessingPurpose.objects.all(),
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            raise forms.ValidationError("The end must be after the start.")
        if data.get("recipient") and not data.get("purpose"):
            self.add_error("purpose", "Name the purpose of the hand-over.")
        if data.get("purpose") and not data.get("recipient"):
            self.add_error("recipient", "Name who the lines are handed over to.")
        return data


@admin.register(RequestLog)
class RequestLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Staff query the log for an incident window and export it as CSV (LOG-4)."""

    list_display = ("time", "ip_address", "method", "path", "status", "user_id", "browser", "os")
    list_filter = ("status", "method", "browser")
    search_fields = ("=ip_address", "path")
    date_hierarchy = "time"
    show_full_result_count = False  # COUNT(*) over millions of rows on every page is waste
    change_list_template = "admin/accounts/requestlog/change_list.html"

    def get_urls(self) -> list[Any]:
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="accounts_requestlog_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        if not request.user.has_perm("accounts.export_requestlog"):
            raise PermissionDenied
        form = RequestLogExportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            rows = request_log_export_csv(
                actor=cast(User, request.user),
                start=data["start"],
                end=data["end"],
                ip_address=data["ip_address"] or None,
                reason=data["reason"],
                actor_ip=client_ip(request),
                recipient=data["recipient"],
                purpose=data["purpose"],
            )
            response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
            name = f"request-log-{data['start']:%Y%m%dT%H%M}-{data['end']:%Y%m%dT%H%M}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Export request-log lines",
            "opts": self.model._meta,
        }
        return TemplateResponse(
            request,
            "admin/accounts/requestlog/export.html",
            context,
            status=400 if form.errors else 200,
        )


@admin.register(DailyUsage)
class DailyUsageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("day", "path_group", "status_class", "browser", "requests", "bytes_sent")
    list_filter = ("status_class", "browser")
    date_hierarchy = "day"
