"""The ticket list's columns and filters: the legal clock as staff see it (DSR-2).

Levels come from dsr.services.clocks, so the colours, the filters, the summary line and
the privacy officers' alerts cannot disagree about what "at risk" means.
"""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts.models import User
from dsr.models import OPEN_STATUSES, AlertLevel, Ticket
from dsr.services.clocks import at_risk_q, overdue_q, ticket_deadline_level

_LEVEL_CSS: dict[str, str] = {
    AlertLevel.OVERDUE: "dsr-days-overdue",
    AlertLevel.AT_RISK: "dsr-days-at-risk",
    AlertLevel.NONE: "dsr-days-ok",
}


def days_left_text(days: int) -> str:
    if days < 0:
        return f"{-days} day{'s' if days != -1 else ''} overdue"
    if days == 0:
        return "due today"
    return f"{days} day{'s' if days != 1 else ''} left"


def days_left_html(ticket: Ticket, *, today: Any = None) -> SafeString:
    """The days left with its colour class; answered tickets show no clock."""
    if not ticket.is_open:
        return format_html('<span class="dsr-days dsr-days-closed">{}</span>', "answered")
    today = today or timezone.localdate()
    level = ticket_deadline_level(ticket, today=today)
    days = (ticket.due_on - today).days
    return format_html(
        '<span class="dsr-days {}">{}</span>', _LEVEL_CSS[level], days_left_text(days)
    )


def outcome_html(value: Any) -> SafeString:
    """The outcome JSON (receipt, answer, decision) as nested lists, escaped."""
    if isinstance(value, dict):
        if not value:
            return format_html("{}", "-")
        rows = format_html_join(
            "", "<dt>{}</dt><dd>{}</dd>", ((str(k), outcome_html(v)) for k, v in value.items())
        )
        return format_html('<dl class="dsr-outcome">{}</dl>', rows)
    if isinstance(value, list):
        if not value:
            return format_html("{}", "none")
        items = format_html_join("", "<li>{}</li>", ((outcome_html(v),) for v in value))
        return format_html("<ul>{}</ul>", items)
    if value is None:
        return format_html("{}", "-")
    return format_html("{}", value)


# --- List filters ----------------------------------------------------------------------------
class DeadlineFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "deadline"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("overdue", "Overdue"),
            ("at_risk", f"Due within {settings.DSR_ALERT_BUSINESS_DAYS} business days"),
            ("later", "Later"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        today = timezone.localdate()
        if self.value() == "overdue":
            return queryset.filter(overdue_q(today=today))
        if self.value() == "at_risk":
            return queryset.filter(at_risk_q(today=today))
        if self.value() == "later":
            return queryset.filter(status__in=OPEN_STATUSES).exclude(
                overdue_q(today=today) | at_risk_q(today=today)
            )
        return queryset


class AssignedFilter(admin.SimpleListFilter):
    title = "assigned"
    parameter_name = "assigned"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("me", "To me"), ("nobody", "To nobody")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        if self.value() == "me":
            return queryset.filter(assignee=cast(User, request.user))
        if self.value() == "nobody":
            return queryset.filter(assignee__isnull=True)
        return queryset
