"""Admin: privacy policy versions (CON-5). Drafts are edited; publishing is one service call."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from accounts.models import User
from common.models import FanoutStatus
from consent.models import PolicyStatus, PolicyVersion
from consent.services.policy import (
    PUBLISH_PERMISSION,
    PolicyError,
    policy_draft_save,
    policy_notice_audience,
    policy_publish,
)

EDITABLE = ("summary", "reduces_rights", "effective_at", "body")


class PolicyVersionForm(forms.ModelForm):
    class Meta:
        model = PolicyVersion
        fields = EDITABLE
        widgets = {
            "summary": forms.Textarea(attrs={"rows": 3}),
            "body": forms.Textarea(attrs={"rows": 24, "cols": 100}),
        }
        help_texts = {
            "effective_at": "When it takes effect. A date already past means: when published. "
            "A later date: published (and announced) at once, in force from then."
        }


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    form = PolicyVersionForm
    list_display = (
        "number",
        "status",
        "effective_at",
        "reduces_rights",
        "published_at",
        "published_by",
        "notice_emails",
    )
    list_filter = ("status", "reduces_rights")
    list_select_related = ("published_by",)
    actions = ["publish_selected"]
    change_form_template = "consent/policy_admin_change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[PolicyVersion]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_sends=Count("sends"),
                n_sent=Count("sends", filter=Q(sends__status=FanoutStatus.SENT)),
            )
        )

    @admin.display(description="notice emails sent")
    def notice_emails(self, obj: Any) -> str:
        total = int(getattr(obj, "n_sends", 0))
        return f"{int(getattr(obj, 'n_sent', 0))} of {total}" if total else "-"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return EDITABLE
        return ("number", "status", *EDITABLE, "published_at", "published_by")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        if obj.status != PolicyStatus.DRAFT:
            return ("number", "status", *EDITABLE, "published_at", "published_by")
        return ("number", "status", "published_at", "published_by")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A published version is what people were shown: it is never edited.
        if obj is not None and obj.status != PolicyStatus.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.status != PolicyStatus.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # would delete published versions too
        return actions

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PUBLISH_PERMISSION)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        try:
            policy_draft_save(version=obj, actor=cast(User, request.user))
        except PolicyError as exc:  # pragma: no cover - published versions are read-only
            raise PermissionDenied(str(exc)) from exc

    # --- Publishing ---------------------------------------------------------------------------
    @admin.action(description="Publish the selected drafts", permissions=["publish"])
    def publish_selected(self, request: HttpRequest, queryset: QuerySet[PolicyVersion]) -> None:
        done = 0
        for version in queryset.order_by("number"):
            try:
                policy_publish(version=version, actor=cast(User, request.user))
            except PolicyError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"Published {done} version(s).", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.publish_view)
        return [
            path("<int:pk>/publish/", view, name="consent_policyversion_publish"),
            *super().get_urls(),
        ]

    def publish_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: what publishing will do. POST: publish (a plain form, no JS)."""
        if not self.has_publish_permission(request):
            raise PermissionDenied
        version = get_object_or_404(PolicyVersion, pk=pk)
        change_url = reverse("admin:consent_policyversion_change", args=[version.pk])
        error = ""
        if request.method == "POST":
            try:
                policy_publish(version=version, actor=cast(User, request.user))
            except PolicyError as exc:
                error = str(exc)
            else:
                self.message_user(
                    request,
                    f"Version {version.number} is published."
                    + (
                        " Every account holder is being emailed and notified."
                        if version.reduces_rights
                        else ""
                    ),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(change_url)
        elif version.status != PolicyStatus.DRAFT:
            error = f"Version {version.number} is already published."
        context = {
            **self.admin_site.each_context(request),
            "title": f"Publish version {version.number}",
            "opts": self.model._meta,
            "original": version,
            "version": version,
            "error": error,
            "change_url": change_url,
            "now": timezone.now(),
            "recipients": policy_notice_audience().count() if version.reduces_rights else 0,
        }
        return TemplateResponse(
            request,
            "consent/policy_admin_publish.html",
            context,
            status=400 if error else 200,
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra = {"can_publish": self.has_publish_permission(request)}
        return cast(
            HttpResponse,
            super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra}),
        )
