"""The portfolio in the admin (IMG-3): staff publish only images whose permission is live.

Candidates are the delivered results whose customer's permission holds right now;
previewing one is an audited opening of a customer's image (IMG-2, reason "portfolio").
Publishing and unpublishing call the services, which check the permission and the staff
member's right again at the moment of acting. Rows are never deleted by hand: they own
files, and go by the retention rule once unpublished or withdrawn.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from common.http import client_ip
from images.models import PortfolioItem, PortfolioStatus, Result
from images.selectors import portfolio_candidate_get, portfolio_candidates
from images.services.portfolio import (
    PortfolioRefused,
    portfolio_candidate_open,
    portfolio_publish,
    portfolio_unpublish,
)

PUBLISH_PERM = "images.publish_portfolio"


class PublishForm(forms.Form):
    caption = forms.CharField(max_length=200, required=False)


@admin.register(PortfolioItem)
class PortfolioItemAdmin(admin.ModelAdmin):
    list_display = ("id", "caption", "status", "copies", "published_at", "withdrawn_at")
    list_filter = ("status",)
    ordering = ("-published_at", "-id")
    fields = (
        "caption",
        "status",
        "consent_target",
        "copies",
        "published_by",
        "published_at",
        "withdrawn_at",
    )
    readonly_fields = (
        "status",
        "consent_target",
        "copies",
        "published_by",
        "published_at",
        "withdrawn_at",
    )
    actions = ["unpublish"]
    change_list_template = "images/portfolio_admin_list.html"

    @admin.display(description="Copies")
    def copies(self, obj: PortfolioItem) -> str:
        if obj.status == PortfolioStatus.PUBLISHED:
            if not obj.after:
                return "being made"
            url = reverse("images:portfolio_image", args=[obj.pk, "after"])
            return format_html('<a href="{}" target="_blank" rel="noopener">public image</a>', url)
        return "deleting" if (obj.before or obj.after) else "deleted"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # items are made from the candidates list, by the publish service

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # rows own files: unpublish, and retention deletes row and files

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PUBLISH_PERM)

    @admin.action(description="Unpublish the selected items", permissions=["publish"])
    def unpublish(self, request: HttpRequest, queryset: QuerySet[PortfolioItem]) -> None:
        done = sum(portfolio_unpublish(item=item, actor=request.user) for item in queryset)
        self.message_user(request, f"{done} item(s) unpublished; their copies are being deleted.")

    # --- Candidates, preview, publish ------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "candidates/",
                self.admin_site.admin_view(self.candidates_view),
                name="images_portfolioitem_candidates",
            ),
            path(
                "candidates/<int:result_id>/preview/<str:side>/",
                self.admin_site.admin_view(self.preview_view),
                name="images_portfolioitem_preview",
            ),
            path(
                "candidates/<int:result_id>/publish/",
                self.admin_site.admin_view(self.publish_view),
                name="images_portfolioitem_publish",
            ),
        ]
        return own + super().get_urls()

    def _require_publisher(self, request: HttpRequest) -> None:
        if not request.user.has_perm(PUBLISH_PERM):
            raise PermissionDenied

    def candidates_view(self, request: HttpRequest) -> HttpResponse:
        self._require_publisher(request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Portfolio candidates: images with the customer's live permission",
            "candidates": list(portfolio_candidates()[:200]),
            "form": PublishForm(),
        }
        return render(request, "images/portfolio_candidates.html", context)

    def preview_view(self, request: HttpRequest, result_id: int, side: str) -> HttpResponseBase:
        """Open a candidate's image: only while permission is live, and audited (IMG-2)."""
        self._require_publisher(request)
        result = portfolio_candidate_get(result_id=result_id)
        try:
            url = portfolio_candidate_open(
                actor=request.user, result=result, side=side, ip_address=client_ip(request)
            )
        except PortfolioRefused as exc:
            raise Http404(exc.message) from exc
        return redirect(url)

    def publish_view(self, request: HttpRequest, result_id: int) -> HttpResponse:
        self._require_publisher(request)
        back = redirect(reverse("admin:images_portfolioitem_candidates"))
        if request.method != "POST":
            return back
        form = PublishForm(request.POST)
        if not form.is_valid():
            messages.error(request, "The caption is at most 200 characters.")
            return back
        # Not the candidates selector: if the permission went meanwhile, the service says so.
        result = get_object_or_404(Result, pk=result_id)
        try:
            item = portfolio_publish(
                result=result, actor=request.user, caption=form.cleaned_data["caption"]
            )
        except PortfolioRefused as exc:
            messages.error(request, exc.message)
            return back
        messages.success(
            request, f"Published as portfolio item {item.pk}; its copies are being made."
        )
        return back
