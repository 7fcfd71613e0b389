"""The account's privacy requests page, one ticket's page, and "Close my account"."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts.views.common import render_form
from common.http import AuthedRequest
from dsr.forms import CloseAccountForm, RequestForm
from dsr.models import ArchiveStatus, Ticket, TicketEventKind, TicketStatus
from dsr.selectors import ticket_get_for_user, tickets_for_user
from dsr.services.intake import IntakeThrottled, dsr_close_account, dsr_request_from_account
from dsr.services.tickets import TicketRefused, ticket_days_left

# What the subject sees of a ticket's history: never staff notes or staff names.
SUBJECT_EVENTS = (
    TicketEventKind.CREATED,
    TicketEventKind.TRANSITION,
    TicketEventKind.MERGED,
    TicketEventKind.EXTENDED,
    TicketEventKind.CONFIRMED,
)


def _list_page(request: AuthedRequest, form: RequestForm, *, status: int | None = None) -> Any:
    return render_form(
        request,
        "dsr/requests.html",
        {"form": form, "tickets": list(tickets_for_user(user=request.user)[:200])},
        status=status,
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def requests_list(request: AuthedRequest) -> HttpResponse:
    if request.method == "GET":
        return _list_page(request, RequestForm())
    form = RequestForm(request.POST)
    if not form.is_valid():
        return _list_page(request, form)
    try:
        intake = dsr_request_from_account(
            user=request.user,
            type=form.cleaned_data["type"],
            jurisdiction=form.jurisdiction,
            details=form.cleaned_data["details"],
            direct_marketing=form.cleaned_data["direct_marketing"],
        )
    except TicketRefused as exc:
        form.add_error(None, exc.message)
        return _list_page(request, form, status=429 if isinstance(exc, IntakeThrottled) else 400)
    messages.success(request, intake.message)
    return redirect("dsr:ticket", reference=intake.ticket.reference)


def _history(ticket: Ticket) -> list[dict[str, Any]]:
    rows = []
    for event in ticket.events.filter(kind__in=SUBJECT_EVENTS).order_by("created_at", "id"):
        label = event.get_kind_display()
        if event.kind == TicketEventKind.TRANSITION and event.to_status:
            label = f"Status: {TicketStatus(event.to_status).label.lower()}"
        rows.append({"when": event.created_at, "label": label})
    return rows


def _download_url(ticket: Ticket) -> str:
    if not hasattr(ticket, "archive") or ticket.archive.status != ArchiveStatus.READY:
        return ""
    from dsr.services.export import export_download_url

    url = export_download_url(ticket=ticket)
    # The email needs an absolute link; this page links within the site.
    return url.removeprefix(settings.SITE_URL)


@never_cache
@login_required
def ticket_detail(request: AuthedRequest, reference: str) -> HttpResponse:
    ticket = ticket_get_for_user(user=request.user, reference=reference)
    return render(
        request,
        "dsr/ticket.html",
        {
            "ticket": ticket,
            "history": _history(ticket),
            "days_left": ticket_days_left(ticket) if ticket.is_open else None,
            "download_url": _download_url(ticket),
        },
    )


@never_cache
@sensitive_post_parameters("password")
@login_required
@require_http_methods(["GET", "POST"])
def close_account(request: AuthedRequest) -> HttpResponse:
    wait = settings.DSR_CLOSE_ACCOUNT_WAIT_DAYS
    context: dict[str, Any] = {
        "wait_days": wait,
        "invoice_years": settings.INVOICE_RETENTION_YEARS,
        "staff": request.user.is_staff,
    }
    form = CloseAccountForm(request.POST if request.method == "POST" else None)
    if request.method == "GET" or not form.is_valid():
        return render_form(request, "dsr/close_account.html", {**context, "form": form})
    try:
        intake = dsr_close_account(user=request.user, password=form.cleaned_data["password"])
    except TicketRefused as exc:
        form.add_error("password" if not request.user.is_staff else None, exc.message)
        status = 429 if isinstance(exc, IntakeThrottled) else 400
        return render_form(
            request, "dsr/close_account.html", {**context, "form": form}, status=status
        )
    context["ticket"] = intake.ticket
    if wait <= 0:
        # The erasure ends every session anyway; this one ends now, with the answer.
        logout(request)
    return render(request, "dsr/close_account_done.html", context)
