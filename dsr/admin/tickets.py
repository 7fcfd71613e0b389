"""Data-subject requests in the admin: the support staff's and privacy officers' workbench.

The list shows open tickets first, by the date that applies now, with the days left
coloured (DSR-2). The change page is read-only facts, the history, the fulfilment's
steps, and one panel per action (actions.py): each a POST that calls one service, with
refusals shown as messages. Staff enter letters and phone requests through the add page,
which records how the identity was checked (DSR-1).
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from accounts.models import User
from common.admin import ReadOnlyAdminMixin
from dsr.admin.actions import ACTIONS, actions_for
from dsr.admin.display import (
    AssignedFilter,
    DeadlineFilter,
    days_left_html,
    outcome_html,
)
from dsr.admin.forms import ChildReportForm, StaffEntryForm
from dsr.models import (
    EXPORT_TYPES,
    OPEN_STATUSES,
    Channel,
    ErasureStep,
    ExportArchive,
    ProcessingRestriction,
    RequestType,
    Ticket,
    TicketEvent,
)
from dsr.services.clocks import tickets_deadline_counts, tickets_with_due
from dsr.services.tickets import TicketRefused, TicketStateError, ticket_create

# What a service may refuse with; its message is meant for people.
REFUSALS: tuple[type[Exception], ...] = (TicketRefused, TicketStateError)


# --- Inlines (read-only) ---------------------------------------------------------------------
class TicketEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TicketEvent
    fields = ("created_at", "kind", "actor", "from_status", "to_status", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "history entry"
    verbose_name_plural = "history"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The history is part of the ticket: whoever may see the ticket sees it.
        return request.user.has_perm("dsr.view_ticket")

    def get_queryset(self, request: HttpRequest) -> QuerySet[TicketEvent]:
        return super().get_queryset(request).select_related("actor")


class ExportArchiveInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = ExportArchive
    fields = (
        "status",
        "size",
        "contents",
        "attempts",
        "last_error",
        "ready_at",
        "expires_at",
        "downloads",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "export archive"


class ErasureStepInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ErasureStep
    fields = (
        "position",
        "key",
        "status",
        "rows_deleted",
        "rows_anonymised",
        "rows_kept",
        "files_deleted",
        "attempts",
        "last_error",
        "finished_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "erasure steps"


# --- Tickets ---------------------------------------------------------------------------------
TICKET_FIELDSETS: tuple[tuple[str, dict[str, tuple[str, ...]]], ...] = (
    (
        "Request",
        {
            "fields": (
                "reference",
                "type",
                "jurisdiction",
                "status",
                "channel",
                "user",
                "email",
                "details",
                "direct_marketing",
                "child",
                "merged_count",
                "repeat_of",
                "flag",
            )
        },
    ),
    (
        "Identity",
        {
            "fields": (
                "received_at",
                "verified_at",
                "identity_check",
                "identity_note",
                "entered_by",
            )
        },
    ),
    (
        "Legal clock (DSR-2)",
        {
            "fields": (
                "days_left_display",
                "calendar",
                "first_due",
                "extended_due",
                "extension_reason",
                "extended_at",
                "confirm_due",
                "confirmation_sent_at",
                "alert_level",
            )
        },
    ),
    ("Work", {"fields": ("assignee", "blocked_reason", "not_before")}),
    (
        "Answer",
        {
            "fields": (
                "outcome_note",
                "outcome_display",
                "rejection_reason",
                "rejection_text",
                "fulfilled_at",
                "closed_at",
                "reduced_at",
            )
        },
    ),
)


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    # The clock first: the table scrolls sideways on narrow screens, the deadline must not.
    list_display = (
        "reference",
        "days_left",
        "due_date",
        "status",
        "kind",
        "law",
        "subject",
        "received",
        "assignee",
        "indicators",
    )
    list_display_links = ("reference",)
    list_filter = (
        "status",
        "type",
        "jurisdiction",
        DeadlineFilter,
        AssignedFilter,
        "channel",
    )
    search_fields = ("=reference", "email", "user__email")
    list_select_related = ("user", "assignee")
    list_per_page = 50
    fieldsets = cast(Any, TICKET_FIELDSETS)
    readonly_fields = tuple(name for _, options in TICKET_FIELDSETS for name in options["fields"])
    inlines = [ExportArchiveInline, ErasureStepInline, TicketEventInline]
    change_form_template = "admin/dsr/ticket/change_form.html"
    change_list_template = "admin/dsr/ticket/change_list.html"

    class Media:
        css = {"all": ("admin/dsr/tickets.css",)}

    # --- The list --------------------------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> QuerySet[Ticket]:
        return tickets_with_due(super().get_queryset(request))

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        # Open first, the most urgent on top. Expressions, not annotation names: the base
        # get_queryset orders before our annotation exists.
        answered = Case(
            When(status__in=OPEN_STATUSES, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        return [answered.asc(), Coalesce("extended_due", "first_due").asc(), "id"]

    @admin.display(description="type", ordering="type")
    def kind(self, obj: Ticket) -> str:
        # The short name: the long labels (what the subject chose) crowd the list out.
        return obj.get_type_display().split(" (")[0].split(":")[0]

    @admin.display(description="law", ordering="jurisdiction")
    def law(self, obj: Ticket) -> str:
        return obj.jurisdiction.upper()

    @admin.display(description="subject")
    def subject(self, obj: Ticket) -> str:
        return obj.subject_label

    @admin.display(description="received", ordering="received_at")
    def received(self, obj: Ticket) -> str:
        return f"{timezone.localtime(obj.received_at):%Y-%m-%d}"

    @admin.display(description="due", ordering="due")
    def due_date(self, obj: Ticket) -> str:
        return f"{obj.due_on:%Y-%m-%d}" + (" (extended)" if obj.extended_due else "")

    @admin.display(description="days left", ordering="due")
    def days_left(self, obj: Ticket) -> SafeString:
        return days_left_html(obj)

    @admin.display(description="days left")
    def days_left_display(self, obj: Ticket) -> SafeString:
        return days_left_html(obj)

    @admin.display(description="")
    def indicators(self, obj: Ticket) -> SafeString:
        marks = []
        if obj.blocked_reason:
            marks.append(("dsr-mark dsr-mark-blocked", obj.blocked_reason, "blocked"))
        if obj.flag:
            marks.append(("dsr-mark dsr-mark-flag", obj.flag, "flagged"))
        if obj.merged_count:
            marks.append(("dsr-mark", "Duplicate requests merged", f"+{obj.merged_count}"))
        return format_html_join(" ", '<span class="{}" title="{}">{}</span>', marks)

    @admin.display(description="outcome")
    def outcome_display(self, obj: Ticket) -> SafeString:
        return outcome_html(obj.outcome)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        from django.conf import settings

        extra = {
            **(extra_context or {}),
            "deadline_counts": tickets_deadline_counts(),
            "alert_days": settings.DSR_ALERT_BUSINESS_DAYS,
            "can_report_child": request.user.has_perm("dsr.report_child"),
        }
        return cast(HttpResponse, super().changelist_view(request, extra))

    # --- Permissions: facts are never edited by hand; there is no delete ---------------------
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # every change is an action calling a service

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # tickets are evidence; closed ones are reduced by retention

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # --- The change page and its action buttons ---------------------------------------------
    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # Only the fulfilment this ticket has: an archive, or erasure steps.
        skip: set[type] = set()
        if obj is None or obj.type not in EXPORT_TYPES:
            skip.add(ExportArchiveInline)
        if obj is None or obj.type != RequestType.ERASURE:
            skip.add(ErasureStepInline)
        instances = super().get_inline_instances(request, obj)
        return [i for i in instances if type(i) not in skip]

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/do/<str:name>/", wrap(self.action_view), name="dsr_ticket_action"),
            path("report-child/", wrap(self.report_child_view), name="dsr_ticket_report_child"),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = dict(extra_context or {})
        ticket = (
            Ticket.objects.select_related("user").filter(pk=object_id).first()
            if object_id.isdigit()
            else None
        )
        if ticket is not None and self.has_view_permission(request, ticket):
            extra["ticket_actions"] = actions_for(ticket, request.user)
            extra["days_left"] = days_left_html(ticket)
        return super().change_view(request, object_id, form_url, extra)

    def _back(self, ticket: Ticket) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:dsr_ticket_change", args=[ticket.pk]))

    def action_view(self, request: HttpRequest, pk: int, name: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        ticket = get_object_or_404(Ticket.objects.select_related("user"), pk=pk)
        action = ACTIONS.get(name)
        if action is None or not self.has_view_permission(request, ticket):
            raise PermissionDenied
        if not request.user.has_perm(action.permission):
            raise PermissionDenied
        form = action.form(request.POST, ticket=ticket, prefix=action.name)
        if not form.is_valid():
            messages.error(request, f"{action.label}: {_form_errors(form)}")
            return self._back(ticket)
        try:
            message = action.run(ticket, cast(User, request.user), form)
        except REFUSALS as exc:
            messages.error(request, f"{action.label}: {_refusal_text(exc)}")
        else:
            messages.success(request, message)
        return self._back(ticket)

    # --- Staff entry on a subject's behalf (DSR-1) ------------------------------------------
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StaffEntryForm(request.POST or None, admin_site=self.admin_site)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                intake = ticket_create(
                    type=data["type"],
                    channel=Channel.STAFF,
                    actor=cast(User, request.user),
                    user=data["user"],
                    email=data["email"],
                    jurisdiction=data["jurisdiction"],
                    details=data["details"],
                    direct_marketing=data["direct_marketing"],
                    identity_check=data["identity_check"],
                    identity_note=data["identity_note"],
                )
            except REFUSALS as exc:
                form.add_error(None, _refusal_text(exc))
            else:
                level = messages.SUCCESS if intake.created else messages.WARNING
                text = (
                    f"{intake.ticket.reference} entered and verified."
                    if intake.created
                    else f"Merged into the open request {intake.ticket.reference}."
                )
                messages.add_message(request, level, text)
                return self._back(intake.ticket)
        return self._entry_page(
            request,
            form,
            title="Enter a request on a subject's behalf",
            intro="Enter a request received by letter or phone. Record how you checked the "
            "subject's identity: the request is verified at once and its fulfilment starts.",
            submit_label="Enter the request",
        )

    def _entry_page(
        self, request: HttpRequest, form: Any, *, title: str, intro: str, submit_label: str
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "intro": intro,
            "submit_label": submit_label,
            "form": form,
            "media": self.media + form.media,
            "add": True,
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/dsr/ticket/entry_form.html", context)

    # --- A child's account (ACC-5) ------------------------------------------------------------
    def report_child_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("dsr.report_child"):
            raise PermissionDenied
        form = ChildReportForm(request.POST or None, admin_site=self.admin_site)
        if request.method == "POST" and form.is_valid():
            from dsr.services.erasure import dsr_child_report

            try:
                ticket = dsr_child_report(
                    user=form.cleaned_data["user"],
                    actor=cast(User, request.user),
                    note=form.cleaned_data["note"],
                )
            except REFUSALS as exc:
                form.add_error(None, _refusal_text(exc))
            else:
                messages.success(request, f"{ticket.reference}: the account is being erased.")
                return self._back(ticket)
        return self._entry_page(
            request,
            form,
            title="Report an account as a child's (under 13)",
            intro="The account and its data are erased at once, without a waiting period "
            "or approval. Only what a legal duty requires is kept.",
            submit_label="Report and erase",
        )


def _form_errors(form: Any) -> str:
    parts = []
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        text = " ".join(str(e) for e in errors)
        parts.append(f"{label}: {text}" if label else text)
    return " ".join(parts)


def _refusal_text(exc: Exception) -> str:
    return str(getattr(exc, "message", "") or exc)


# --- Processing restrictions (Art. 18) -------------------------------------------------------
class ActiveRestrictionFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("lifted", "Lifted")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[ProcessingRestriction]
    ) -> QuerySet[ProcessingRestriction]:
        if self.value() == "active":
            return queryset.filter(lifted_at__isnull=True)
        if self.value() == "lifted":
            return queryset.filter(lifted_at__isnull=False)
        return queryset


@admin.register(ProcessingRestriction)
class ProcessingRestrictionAdmin(admin.ModelAdmin):
    list_display = ("subject", "ticket", "created_at", "active_now", "lifted_at", "lifted_by")
    list_filter = (ActiveRestrictionFilter,)
    list_select_related = ("user", "ticket", "lifted_by")
    search_fields = ("user__email", "email", "=ticket__reference")
    fields = (
        "user",
        "email",
        "ticket",
        "reason",
        "created_at",
        "lifted_at",
        "lifted_by",
        "lift_reason",
    )
    readonly_fields = fields
    change_form_template = "admin/dsr/processingrestriction/change_form.html"

    @admin.display(description="subject")
    def subject(self, obj: ProcessingRestriction) -> str:
        return obj.user.email if obj.user else obj.email

    @admin.display(description="active", boolean=True)
    def active_now(self, obj: ProcessingRestriction) -> bool:
        return obj.active

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a restriction comes from a ticket

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # lifted through the Lift button only

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # lifted, never deleted: it is the record of what was refused

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.lift_view)
        return [
            path("<int:pk>/lift/", view, name="dsr_processingrestriction_lift"),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = {
            **(extra_context or {}),
            "can_lift": request.user.has_perm("dsr.change_processingrestriction"),
        }
        return super().change_view(request, object_id, form_url, extra)

    def lift_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("dsr.change_processingrestriction"):
            raise PermissionDenied
        restriction = get_object_or_404(ProcessingRestriction, pk=pk)
        back = HttpResponseRedirect(
            reverse("admin:dsr_processingrestriction_change", args=[restriction.pk])
        )
        reason = request.POST.get("reason", "").strip()
        if not reason:
            messages.error(request, "Give the reason for lifting the restriction.")
            return back
        from dsr.services.rights import restriction_lift

        try:
            restriction_lift(restriction=restriction, actor=cast(User, request.user), reason=reason)
        except REFUSALS as exc:
            messages.error(request, _refusal_text(exc))
        else:
            messages.success(request, "Restriction lifted; the subject is told.")
        return back
