"""The breach incident register in the admin, for privacy officers (BRE-1, BRE-2, LOG-4).

The list shows both clocks: 72 hours from awareness for the authority, 1 business day
from confirmation for the affected. An incident is entered with the register's fields
(Art. 33(3), 33(5)), scoped on its own page with a preview of who the rules find, and
confirmed there; the service freezes the scope and starts the fan-out. Nothing here is
deleted: the register keeps every incident, and recipients and notices are its record.
"""

from __future__ import annotations

import dataclasses
import importlib
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.models import User
from common.admin import ReadOnlyAdminMixin
from dsr import calendar
from dsr.admin.breach_forms import IncidentForm, ScopeRuleForm, rule_text
from dsr.models import BreachNotice, Incident, IncidentRecipient, IncidentStatus
from dsr.services.breach import (
    IncidentRefused,
    incident_confirm,
    incident_create,
    incident_update,
)
from dsr.services.breach_scope import ScopeError, breach_scope_preview

# Under this much time left a clock shows "at risk" (amber) rather than "ok".
AT_RISK_SHARE = 0.25
SAMPLE_SIZE = 10


def clock_html(
    *, due: datetime | None, start: datetime | None, done_at: datetime | None
) -> SafeString:
    """A clock as staff see it: time left (coloured), overdue, or when it was met."""
    if due is None:
        return format_html('<span class="dsr-days dsr-days-closed">{}</span>', "not started")
    if done_at is not None:
        late = done_at > due
        css = "dsr-days-overdue" if late else "dsr-days-closed"
        text = f"done {timezone.localtime(done_at):%Y-%m-%d %H:%M}" + (" (late)" if late else "")
        return format_html('<span class="dsr-days {}">{}</span>', css, text)
    left = due - timezone.now()
    if left.total_seconds() < 0:
        return format_html(
            '<span class="dsr-days dsr-days-overdue">{} overdue</span>', _duration(-left)
        )
    total = (due - start).total_seconds() if start else 0
    risky = total > 0 and left.total_seconds() < total * AT_RISK_SHARE
    css = "dsr-days-at-risk" if risky else "dsr-days-ok"
    return format_html('<span class="dsr-days {}">{} left</span>', css, _duration(left))


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _users_done(incident: Incident) -> datetime | None:
    # The users' clock is met when the fan-out finished; the last delivery dates it.
    if incident.status not in (IncidentStatus.NOTIFIED, IncidentStatus.CLOSED):
        return None
    last = (
        IncidentRecipient.objects.filter(incident=incident, sent_at__isnull=False)
        .order_by("-sent_at")
        .values_list("sent_at", flat=True)
        .first()
    )
    return last or incident.updated_at


def incident_progress_rows(incident: Incident) -> list[tuple[str, Any]]:
    """Sent, failed, acknowledged...: the notify service's figures when it exists."""
    try:
        notify = importlib.import_module("dsr.services.breach_notify")
    except ModuleNotFoundError:
        notify = None
    progress = getattr(notify, "incident_progress", None)
    if progress is not None:
        result = progress(incident=incident)
        if dataclasses.is_dataclass(result) and not isinstance(result, type):
            items = dataclasses.asdict(result)
        elif isinstance(result, dict):
            items = result
        else:
            items = dict(vars(result))
        rows: list[tuple[str, Any]] = []
        for key, value in items.items():
            if isinstance(value, timedelta):
                value = _duration(value) if value.total_seconds() >= 0 else "overdue"
            elif isinstance(value, bool):
                value = "yes" if value else "no"
            rows.append((str(key).replace("_", " "), value))
        return rows
    counts = dict(
        IncidentRecipient.objects.filter(incident=incident)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    notices = BreachNotice.objects.filter(incident=incident)
    return [
        ("recipients", sum(counts.values())),
        *[
            (status, counts.get(status, 0))
            for status in ("pending", "sending", "sent", "failed", "skipped")
        ],
        ("in-site notices", notices.count()),
        ("acknowledged", notices.filter(acknowledged_at__isnull=False).count()),
    ]


def rate_warning(recipients: int, *, now: datetime | None = None) -> str:
    """Before confirming: can this many be emailed within 1 business day at the send rate?"""
    rate = float(getattr(settings, "BREACH_SEND_RATE", 0) or 0)
    if rate <= 0 or recipients == 0:
        return ""
    now = now or timezone.now()
    left = calendar.breach_users_due(now, settings.DSR_CALENDAR) - now
    needed = timedelta(seconds=recipients / rate)
    if needed <= left:
        return ""
    return (
        f"At {rate:g} emails a second, {recipients} recipients need {_duration(needed)}, but "
        f"1 business day from now is {_duration(left)}: the deadline cannot be met at this "
        "rate. Raise BREACH_SEND_RATE (the provider's limit) before confirming."
    )


def incident_window(incident: Incident) -> tuple[datetime, datetime]:
    """The window of the incident for the request-log export: its scope's windows if any."""
    starts, ends = [], []
    for rule in (incident.scope or {}).get("rules") or []:
        start, end = (
            parse_datetime(str(rule.get("start", ""))),
            parse_datetime(str(rule.get("end", ""))),
        )
        if start and end:
            starts.append(start)
            ends.append(end)
    if starts:
        return min(starts), max(ends)
    return incident.aware_at - timedelta(days=7), min(timezone.now(), incident.authority_due)


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    form = IncidentForm
    list_display = (
        "reference",
        "title",
        "status",
        "aware_at",
        "authority_clock",
        "users_clock",
        "recipients_count",
    )
    list_display_links = ("reference", "title")
    list_filter = ("status", "notification_needed")
    search_fields = ("=reference", "title")
    readonly_fields = (
        "reference",
        "status",
        "authority_due",
        "authority_clock",
        "calendar",
        "confirmed_at",
        "confirmed_by",
        "users_due",
        "users_clock",
        "created_by",
        "scope_display",
    )
    change_form_template = "admin/dsr/incident/change_form.html"

    class Media:
        css = {"all": ("admin/dsr/tickets.css",)}

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        register = [
            "title",
            "aware_at",
            "description",
            "data_categories",
            "subject_categories",
            "approx_subjects",
            "consequences",
            "measures_taken",
            "measures_proposed",
            "advice",
            "contact_point",
        ]
        authority = [
            "authority_notified_at",
            "authority_reference",
            "authority_content",
            "authority_delay_reason",
        ]
        decision = ["notification_needed", "no_notification_reason"]
        message = ["message_subject", "message_body"]
        if obj is None:
            return [
                ("What happened (the register)", {"fields": register}),
                ("Notification decision (Art. 33(5))", {"fields": decision}),
                ("Message to the affected", {"fields": message}),
            ]
        return [
            ("Incident", {"fields": ["reference", "status", "created_by"]}),
            ("What happened (the register)", {"fields": register}),
            ("Notification decision (Art. 33(5))", {"fields": decision}),
            (
                "Authority (72 hours, Art. 33)",
                {"fields": ["authority_due", "authority_clock", *authority]},
            ),
            (
                "Affected users (1 business day, BRE-2)",
                {
                    "fields": [
                        "calendar",
                        "confirmed_at",
                        "confirmed_by",
                        "users_due",
                        "users_clock",
                        "scope_display",
                    ]
                },
            ),
            ("Message to the affected", {"fields": message}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(self.readonly_fields)
        if obj is not None:
            fields.append("aware_at")  # the stored 72-hour clock starts from it
            if obj.status != IncidentStatus.DRAFT:
                fields += ["message_subject", "message_body"]  # the exact text sent
        return fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Incident]:
        return super().get_queryset(request).annotate(n_recipients=Count("recipients"))

    # --- Columns ---------------------------------------------------------------------------
    @admin.display(description="authority clock (72 h)", ordering="authority_due")
    def authority_clock(self, obj: Incident) -> SafeString:
        due = format_html("due {} · ", f"{timezone.localtime(obj.authority_due):%Y-%m-%d %H:%M}")
        clock = clock_html(
            due=obj.authority_due, start=obj.aware_at, done_at=obj.authority_notified_at
        )
        return format_html("{}{}", due, clock)

    @admin.display(description="users clock (1 business day)", ordering="users_due")
    def users_clock(self, obj: Incident, *, exact: bool = False) -> SafeString:
        if obj.users_due is None:
            return clock_html(due=None, start=None, done_at=None)
        due = format_html("due {} · ", f"{timezone.localtime(obj.users_due):%Y-%m-%d %H:%M}")
        if not exact and obj.status in (IncidentStatus.NOTIFIED, IncidentStatus.CLOSED):
            # The list does not look up each incident's last delivery (a scan of up to
            # millions of rows per line); the change page shows when it was met.
            return format_html('{}<span class="dsr-days dsr-days-closed">all told</span>', due)
        clock = clock_html(due=obj.users_due, start=obj.confirmed_at, done_at=_users_done(obj))
        return format_html("{}{}", due, clock)

    @admin.display(description="recipients")
    def recipients_count(self, obj: Incident) -> int:
        return int(getattr(obj, "n_recipients", None) or obj.recipients.count())

    @admin.display(description="scope rules")
    def scope_display(self, obj: Incident) -> str:
        rules = (obj.scope or {}).get("rules") or []
        return "; ".join(rule_text(r) for r in rules) or "none yet"

    # --- Saving: a new incident goes through the service (reference, clock, audit) ----------
    def save_model(self, request: HttpRequest, obj: Incident, form: Any, change: bool) -> None:
        if change:
            incident_update(
                incident=obj, actor=cast(User, request.user), changed=list(form.changed_data)
            )
            return
        data = {
            k: v
            for k, v in form.cleaned_data.items()
            if k not in ("title", "aware_at", "description")
        }
        created = incident_create(
            actor=cast(User, request.user),
            title=form.cleaned_data["title"],
            aware_at=form.cleaned_data["aware_at"],
            description=form.cleaned_data["description"],
            **data,
        )
        for field in Incident._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the register keeps every incident (Art. 33(5))

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # --- The change page: progress, links, export -------------------------------------------
    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = dict(extra_context or {})
        incident = Incident.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if incident is not None and self.has_view_permission(request, incident):
            extra["incident_extra"] = self._panel_context(request, incident)
        return super().change_view(request, object_id, form_url, extra)

    def _panel_context(self, request: HttpRequest, incident: Incident) -> dict[str, Any]:
        context: dict[str, Any] = {
            "authority_clock": self.authority_clock(incident),
            "users_clock": self.users_clock(incident, exact=True),
            "scope_url": reverse("admin:dsr_incident_scope", args=[incident.pk]),
            "recipients_url": reverse("admin:dsr_incidentrecipient_changelist")
            + f"?incident__id__exact={incident.pk}",
            "notices_url": reverse("admin:dsr_breachnotice_changelist")
            + f"?incident__id__exact={incident.pk}",
        }
        if incident.status != IncidentStatus.DRAFT:
            context["progress"] = incident_progress_rows(incident)
        if request.user.has_perm("accounts.export_requestlog"):
            from accounts.admin import RequestLogExportForm

            start, end = incident_window(incident)
            context["export_url"] = reverse("admin:accounts_requestlog_export")
            context["export_form"] = RequestLogExportForm(
                initial={
                    "start": f"{start:%Y-%m-%dT%H:%M}",
                    "end": f"{end:%Y-%m-%dT%H:%M}",
                    "reason": f"Breach {incident.reference}: the incident window's lines",
                }
            )
        return context

    # --- Scope builder, preview and confirmation --------------------------------------------
    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/scope/", wrap(self.scope_view), name="dsr_incident_scope"),
            path("<int:pk>/confirm/", wrap(self.confirm_view), name="dsr_incident_confirm"),
            *super().get_urls(),
        ]

    def scope_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        incident = get_object_or_404(Incident, pk=pk)
        if not self.has_view_permission(request, incident):
            raise PermissionDenied
        form = ScopeRuleForm()
        if request.method == "POST":
            if not self.has_change_permission(request, incident):
                raise PermissionDenied
            if incident.status != IncidentStatus.DRAFT:
                messages.error(request, "The scope is frozen: the incident is confirmed.")
                return HttpResponseRedirect(request.path)
            if "_clear" in request.POST:
                incident.scope = {"rules": []}
                incident.save(update_fields=["scope", "updated_at"])
                messages.success(request, "Scope rules cleared.")
                return HttpResponseRedirect(request.path)
            form = ScopeRuleForm(request.POST)
            if form.is_valid():
                rules = [*((incident.scope or {}).get("rules") or []), form.rule()]
                incident.scope = {"rules": rules}
                incident.save(update_fields=["scope", "updated_at"])
                messages.success(request, f"Rule added: {rule_text(form.rule())}.")
                return HttpResponseRedirect(request.path)
        rules = (incident.scope or {}).get("rules") or []
        preview, preview_error = None, ""
        if rules:
            try:
                preview = breach_scope_preview(scope=incident.scope, sample_size=SAMPLE_SIZE)
            except ScopeError as exc:
                preview_error = str(exc)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": incident,
            "rate_warning": rate_warning(preview.total) if preview else "",
            "title": f"Scope of {incident.reference}",
            "form": form,
            "rules": [rule_text(r) for r in rules],
            "preview": preview,
            "preview_error": preview_error,
            "can_edit": incident.status == IncidentStatus.DRAFT
            and self.has_change_permission(request, incident),
            "can_confirm": incident.status == IncidentStatus.DRAFT
            and request.user.has_perm("dsr.confirm_incident"),
            "media": self.media + form.media,
        }
        status = 400 if form.errors else 200
        return TemplateResponse(request, "admin/dsr/incident/scope.html", context, status=status)

    def confirm_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("dsr.confirm_incident"):
            raise PermissionDenied
        incident = get_object_or_404(Incident, pk=pk)
        try:
            incident = incident_confirm(incident=incident, actor=cast(User, request.user))
        except (IncidentRefused, ScopeError) as exc:
            messages.error(request, getattr(exc, "message", "") or str(exc))
            return HttpResponseRedirect(reverse("admin:dsr_incident_scope", args=[pk]))
        count = incident.recipients.count()
        due = timezone.localtime(incident.users_due or timezone.now())
        messages.success(
            request,
            f"{incident.reference} confirmed: {count} recipient{'s' if count != 1 else ''} "
            f"frozen; notifying them is due by {due:%Y-%m-%d %H:%M}.",
        )
        return HttpResponseRedirect(reverse("admin:dsr_incident_change", args=[pk]))


@admin.register(IncidentRecipient)
class IncidentRecipientAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who is told, and each delivery: the frozen scope of a confirmed incident (BRE-2)."""

    # The delivery first: on narrow screens the table scrolls, and the status must not.
    list_display = ("email", "status", "sent_at", "attempts", "last_error", "reference", "user")
    list_filter = ("status", "incident")
    list_select_related = ("incident", "user")
    search_fields = ("email", "=incident__reference")
    show_full_result_count = False  # a million rows: no second COUNT(*) per page

    @admin.display(description="incident", ordering="incident__reference")
    def reference(self, obj: IncidentRecipient) -> str:
        return obj.incident.reference


@admin.register(BreachNotice)
class BreachNoticeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The in-site notices (banners) of account holders, and when each was acknowledged."""

    list_display = ("user", "incident", "created_at", "acknowledged_at")
    list_filter = ("incident",)
    list_select_related = ("incident", "user")
    search_fields = ("user__email", "=incident__reference")
    show_full_result_count = False
