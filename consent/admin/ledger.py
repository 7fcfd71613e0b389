"""Admin: consent purposes, the ledger (read-only) and staff recording a written request."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from common.admin import ReadOnlyAdminMixin
from common.http import client_ip
from consent.models import ConsentEvent, ConsentPurpose, ConsentState, ConsentText, PurposeKind
from consent.services.account import consent_record_for_subject
from consent.services.ledger import ConsentRefused


@admin.register(ConsentPurpose)
class ConsentPurposeAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "kind", "is_marketing", "per_object", "active")
    list_filter = ("kind", "active")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Code and the ledger refer to purposes by key; retire one with "active" instead.
        return ("key", "kind", "per_object") if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RecordForm(forms.Form):
    email = forms.EmailField(help_text="The subject's address (their account's, if they have one).")
    purpose = forms.ModelChoiceField(
        queryset=ConsentPurpose.objects.filter(active=True).exclude(kind=PurposeKind.COOKIE)
    )
    granted = forms.TypedChoiceField(
        choices=[("1", "Consent given"), ("0", "Consent withdrawn")],
        coerce=lambda v: v == "1",
    )
    target = forms.CharField(
        required=False, max_length=100, help_text='Only for per-item purposes, e.g. "result:42".'
    )
    note = forms.CharField(
        max_length=300, help_text="Which written request: date, channel and your reference."
    )


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "subject",
        "purpose",
        "target",
        "granted",
        "method",
        "policy_version",
        "ip_address",
    )
    list_filter = ("purpose", "method", "granted")
    search_fields = ("=subject", "=email", "target")
    date_hierarchy = "created_at"
    list_select_related = ("purpose", "policy_version")
    change_list_template = "admin/consent/consentevent/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.record_view)
        return [path("record/", view, name="consent_consentevent_record"), *super().get_urls()]

    def record_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("consent.record_consent"):
            raise PermissionDenied
        form = RecordForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                consent_record_for_subject(
                    actor=request.user,
                    email=data["email"],
                    purpose=data["purpose"],
                    granted=data["granted"],
                    target=data["target"].strip(),
                    note=data["note"],
                    actor_ip=client_ip(request),
                )
            except ConsentRefused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Recorded in the consent ledger.")
                return HttpResponseRedirect(reverse("admin:consent_consentevent_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Record a consent from a written request",
            "opts": self.model._meta,
        }
        status = 400 if form.is_bound and form.errors else 200
        return TemplateResponse(
            request, "admin/consent/consentevent/record.html", context, status=status
        )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra = {"can_record": request.user.has_perm("consent.record_consent")}
        return cast(
            HttpResponse, super().changelist_view(request, {**(extra_context or {}), **extra})
        )


@admin.register(ConsentState)
class ConsentStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("subject", "purpose", "target", "granted", "updated_at")
    list_filter = ("purpose", "granted")
    search_fields = ("=subject", "=email")
    list_select_related = ("purpose",)


@admin.register(ConsentText)
class ConsentTextAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("digest", "created_at", "text")
    search_fields = ("=digest",)
