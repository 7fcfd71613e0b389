"""Orders in the admin: support assigns, the assigned retoucher works (IMG-2, ORD-1).

Support and privacy officers see every order's status and history, never its images or
instructions. A retoucher sees only orders assigned to them; opening an original goes
through the audited image view. Every button calls a service.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse

from accounts.models import User
from accounts.roles import RETOUCHER
from common.admin import ReadOnlyAdminMixin
from images.operations.retouch import OPERATIONS
from images.services.intake import UploadRefused
from images.services.results import result_automate, results_upload
from orders.models import Invoice, Order, OrderEvent, Payment
from orders.services import (
    TransitionRefused,
    order_assign_retoucher,
    order_close,
    order_mark_ready,
    order_start_work,
)


class AssignForm(forms.Form):
    retoucher = forms.ModelChoiceField(
        queryset=User.objects.filter(groups__name=RETOUCHER, is_active=True, is_staff=True),
        label="Retoucher",
    )


class AutomateForm(forms.Form):
    photo = forms.IntegerField(widget=forms.HiddenInput)
    operations = forms.MultipleChoiceField(
        choices=[(name, op.label) for name, op in OPERATIONS.items()],
        widget=forms.CheckboxSelectMultiple,
    )


class OrderEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OrderEvent
    fields = ("created_at", "from_status", "to_status", "actor_role")
    extra = 0


def sees_all(user: Any) -> bool:
    return bool(user.is_superuser or user.has_perm("orders.view_all_orders"))


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("reference", "kind", "status", "retoucher", "created_at", "last_edited_at")
    list_filter = ("status", "kind")
    search_fields = ("reference",)
    ordering = ("-created_at",)
    inlines = [OrderEventInline]
    fields = (
        "reference",
        "kind",
        "status",
        "retoucher",
        "amount_minor",
        "currency",
        "revision_round",
        "created_at",
        "submitted_at",
        "paid_at",
        "delivered_at",
        "last_edited_at",
        "failure_message",
    )
    actions = ["start_work", "mark_ready", "close_orders"]
    change_form_template = "admin/orders/order/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        qs = super().get_queryset(request).select_related("retoucher")
        return qs if sees_all(request.user) else qs.filter(retoucher=request.user)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/assign/",
                self.admin_site.admin_view(self.assign_view),
                name="orders_order_assign",
            ),
            path(
                "<int:pk>/results/",
                self.admin_site.admin_view(self.results_view),
                name="orders_order_results",
            ),
            path(
                "<int:pk>/automate/",
                self.admin_site.admin_view(self.automate_view),
                name="orders_order_automate",
            ),
            path(
                "<int:pk>/do/<str:step>/",
                self.admin_site.admin_view(self.step_view),
                name="orders_order_step",
            ),
        ]
        return own + super().get_urls()

    def _get(self, request: HttpRequest, pk: int) -> Order:
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        order = self._get(request, int(object_id))
        user: Any = request.user
        assigned = order.retoucher_id == user.pk and user.has_perm("orders.work_on_order")
        extra = {
            **(extra_context or {}),
            "assigned": assigned,
            "can_assign": user.has_perm("orders.assign_retoucher"),
            # IMG-2: only the assigned retoucher sees instructions and images.
            "instructions": order.instructions if assigned else None,
            "photos": list(order.photos.all()) if assigned else [],
            "results": list(order.results.all()) if assigned else [],
            "automate_form": AutomateForm(),
        }
        return super().change_view(request, object_id, form_url, extra)

    def _back(self, order: Order) -> HttpResponseRedirect:
        return redirect(reverse("admin:orders_order_change", args=[order.pk]))

    def assign_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm("orders.assign_retoucher"):
            raise PermissionDenied
        order = self._get(request, pk)
        form = AssignForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                order_assign_retoucher(
                    actor=request.user,  # type: ignore[arg-type]
                    order=order,
                    retoucher=form.cleaned_data["retoucher"],
                )
            except TransitionRefused as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, "Retoucher assigned.")
                return self._back(order)
        context = {
            **self.admin_site.each_context(request),
            "order": order,
            "form": form,
            "opts": self.model._meta,
            "title": f"Assign a retoucher to {order.reference}",
        }
        return render(request, "admin/orders/order/assign.html", context)

    def results_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        order = self._get(request, pk)
        if request.method != "POST":
            return self._back(order)
        files = request.FILES.getlist("results")
        try:
            results_upload(
                actor=request.user,  # type: ignore[arg-type]
                order=order,
                files=[(f, f.name) for f in files],
            )
        except (UploadRefused, TransitionRefused) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{len(files)} result file(s) uploaded.")
        return self._back(order)

    def automate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        order = self._get(request, pk)
        form = AutomateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            photo = get_object_or_404(order.photos.all(), pk=form.cleaned_data["photo"])
            steps: list[tuple[str, dict[str, float]]] = [
                (name, {}) for name in form.cleaned_data["operations"]
            ]
            try:
                result_automate(
                    actor=request.user,  # type: ignore[arg-type]
                    order=order,
                    photo=photo,
                    steps=steps,
                )
            except TransitionRefused as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, "Automated edit queued; refresh in a moment.")
        elif request.method == "POST":
            messages.error(request, "Choose at least one operation.")
        return self._back(order)

    STEPS: dict[str, Any] = {"start": order_start_work, "ready": order_mark_ready}

    def step_view(self, request: HttpRequest, pk: int, step: str) -> HttpResponse:
        order = self._get(request, pk)
        service = self.STEPS.get(step)
        if service is None or request.method != "POST":
            return self._back(order)
        try:
            service(actor=request.user, order=order)
        except TransitionRefused as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Order {order.reference}: {order.get_status_display()}.")
        return self._back(order)

    def _bulk(self, request: HttpRequest, queryset: QuerySet[Order], service: Any) -> None:
        done = 0
        for order in queryset:
            try:
                service(actor=request.user, order=order)
                done += 1
            except TransitionRefused as exc:
                messages.error(request, exc.message)
        if done:
            messages.success(request, f"{done} order(s) updated.")

    @admin.action(description="Start work on the selected orders (assigned retoucher)")
    def start_work(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._bulk(request, queryset, order_start_work)

    @admin.action(description="Mark the selected orders ready for review (assigned retoucher)")
    def mark_ready(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._bulk(request, queryset, order_mark_ready)

    @admin.action(description="Close the selected delivered orders", permissions=["assign"])
    def close_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._bulk(request, queryset, order_close)

    def has_assign_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.assign_retoucher")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "reference",
        "gateway",
        "order",
        "amount_minor",
        "currency",
        "status",
        "created_at",
    )
    list_filter = ("status", "gateway")


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("display_number", "issued_at", "buyer_name", "total_minor", "currency")
    search_fields = ("number",)
