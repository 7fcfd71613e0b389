"""Admin: newsletter subscribers, audiences and campaigns (CON-1, CON-2, CON-6).

A campaign is written as a draft, previewed exactly as sent, test-sent to the staff
member's own address, then started (consent.send_campaign); the fan-out engine sends
it. Every state change is a service call that writes its own audit row.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from accounts.models import User
from common.http import client_ip
from consent.emails import MarketingNotReady
from consent.models import (
    Audience,
    Campaign,
    CampaignSend,
    CampaignStatus,
    Subscriber,
)
from consent.services.audiences import audience_build
from consent.services.campaigns import (
    CampaignRefused,
    campaign_cancel,
    campaign_preview,
    campaign_progress,
    campaign_recipients,
    campaign_start,
    campaign_test_send,
)

SEND_PERMISSION = "consent.send_campaign"


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    """Read-only: subscriptions come from the people themselves (double opt-in)."""

    list_display = ("email", "status", "requested_at", "confirmed_at", "unsubscribed_at")
    list_filter = ("status",)
    search_fields = ("email",)
    fields = (
        "email",
        "user",
        "consent_subject",
        "status",
        "wording",
        "policy_version",
        "requested_at",
        "confirmation_sent_at",
        "confirmed_at",
        "unsubscribed_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Audience)
class AudienceAdmin(admin.ModelAdmin):
    list_display = ("name", "rule", "built_at", "size")
    fields = ("name", "rule", "built_at")
    readonly_fields = ("built_at",)
    actions = ["build_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Audience]:
        return super().get_queryset(request).annotate(n_members=Count("members"))

    @admin.display(description="members")
    def size(self, obj: Any) -> int:
        return int(getattr(obj, "n_members", 0))

    @admin.action(description="Build from site use (paid orders)", permissions=["change"])
    def build_selected(self, request: HttpRequest, queryset: QuerySet[Audience]) -> None:
        total = 0
        for audience in queryset:
            total += audience_build(
                audience=audience, actor=request.user, ip_address=client_ip(request)
            )
        self.message_user(
            request, f"Built {queryset.count()} audience(s): {total} member(s).", messages.SUCCESS
        )


@admin.register(CampaignSend)
class CampaignSendAdmin(admin.ModelAdmin):
    """Who got which campaign: read-only evidence of the sending."""

    list_display = ("campaign", "subscriber", "status", "attempts", "sent_at", "last_error")
    list_filter = ("status",)
    list_select_related = ("campaign", "subscriber")
    search_fields = ("subscriber__email",)
    readonly_fields = (
        "campaign",
        "subscriber",
        "status",
        "attempts",
        "sent_at",
        "last_error",
        "claimed_at",
    )
    fields = readonly_fields
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ("subject", "body", "audience")
        widgets = {"body": forms.Textarea(attrs={"rows": 18, "cols": 90})}


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("subject", "status", "audience", "started_at", "finished_at")
    list_filter = ("status",)
    list_select_related = ("audience",)
    actions = ["start_selected", "cancel_selected"]
    change_form_template = "admin/consent/campaign/change_form.html"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        base = ("subject", "body", "audience")
        if obj is None:
            return base
        return (*base, "status", "created_by", "started_by", "started_at", "finished_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        meta = ("status", "created_by", "started_by", "started_at", "finished_at")
        if obj is not None and obj.status != CampaignStatus.DRAFT:
            return ("subject", "body", "audience", *meta)  # what was sent is not rewritten
        return meta

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.status != CampaignStatus.DRAFT:
            return False  # its send records are the evidence of what went to whom
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_send_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(SEND_PERMISSION)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    # --- Actions (the list page) --------------------------------------------------------------
    @admin.action(description="Start sending the selected drafts", permissions=["send"])
    def start_selected(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        for campaign in queryset:
            self._start(request, campaign)

    @admin.action(description="Cancel the selected campaigns", permissions=["send"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        for campaign in queryset:
            self._cancel(request, campaign)

    def _start(self, request: HttpRequest, campaign: Campaign) -> None:
        try:
            count = campaign_start(
                campaign=campaign,
                actor=cast(User, request.user),
                ip_address=client_ip(request),
            )
        except CampaignRefused as exc:
            self.message_user(request, f"“{campaign}” was not started: {exc}", messages.ERROR)
        else:
            self.message_user(
                request, f"“{campaign}” is being sent to {count} recipient(s).", messages.SUCCESS
            )

    def _cancel(self, request: HttpRequest, campaign: Campaign) -> None:
        try:
            skipped = campaign_cancel(
                campaign=campaign, actor=cast(User, request.user), ip_address=client_ip(request)
            )
        except CampaignRefused as exc:
            self.message_user(request, f"“{campaign}”: {exc}", messages.ERROR)
        else:
            self.message_user(
                request,
                f"“{campaign}” is cancelled; {skipped} unsent message(s) will not go out.",
                messages.SUCCESS,
            )

    # --- Change form: preview, test, start, cancel, progress ----------------------------------
    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = dict(extra_context or {})
        campaign = Campaign.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if campaign is not None:
            extra["can_send"] = self.has_send_permission(request)
            extra["progress"] = campaign_progress(campaign=campaign)
            if campaign.status == CampaignStatus.DRAFT:
                extra["recipients_now"] = campaign_recipients(campaign=campaign).count()
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/preview/", wrap(self.preview_view), name="consent_campaign_preview"),
            path(
                "<int:pk>/preview/html/",
                wrap(self.preview_html_view),
                name="consent_campaign_preview_html",
            ),
            path("<int:pk>/test/", wrap(self.test_view), name="consent_campaign_test"),
            path("<int:pk>/start/", wrap(self.start_view), name="consent_campaign_start"),
            path("<int:pk>/cancel/", wrap(self.cancel_view), name="consent_campaign_cancel"),
            *super().get_urls(),
        ]

    def _campaign(self, request: HttpRequest, pk: int) -> Campaign:
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_view_or_change_permission(request, campaign):
            raise PermissionDenied
        return campaign

    def _back(self, campaign: Campaign) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:consent_campaign_change", args=[campaign.pk]))

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The message exactly as sent (headers, text, footer) for a sample recipient."""
        campaign = self._campaign(request, pk)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": campaign,
            "title": f"Preview: {campaign.subject}",
        }
        try:
            context["preview"] = campaign_preview(campaign=campaign)
        except MarketingNotReady as exc:
            context["error"] = str(exc)
        return TemplateResponse(request, "admin/consent/campaign/preview.html", context)

    def preview_html_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The HTML part alone, sandboxed: staff-written text never runs as this site."""
        campaign = self._campaign(request, pk)
        try:
            html = campaign_preview(campaign=campaign).html
        except MarketingNotReady as exc:
            return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src https: data:"
        return response

    def test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self._campaign(request, pk)
        try:
            address = campaign_test_send(campaign=campaign, actor=cast(User, request.user))
        except CampaignRefused as exc:
            self.message_user(request, f"No test sent: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"A test was sent to {address}.", messages.SUCCESS)
        return self._back(campaign)

    def start_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_send_permission(request):
            raise PermissionDenied
        campaign = self._campaign(request, pk)
        self._start(request, campaign)
        return self._back(campaign)

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_send_permission(request):
            raise PermissionDenied
        campaign = self._campaign(request, pk)
        self._cancel(request, campaign)
        return self._back(campaign)
