"""The public request form for non-users and guests, verified by a code sent by email.

The link in the email only shows a page on GET; the verification happens on that page's
POST, so mail scanners that open links use nothing up.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.views.common import render_form
from common.http import client_ip
from dsr.forms import CodeForm, PublicRequestForm
from dsr.models import Ticket
from dsr.services.challenges import ChallengeFailed, challenge_answered, challenge_link_check
from dsr.services.intake import (
    IntakeThrottled,
    dsr_public_resend,
    dsr_public_verify,
    dsr_public_verify_link,
    dsr_request_public,
    public_ticket_from_token,
)
from dsr.services.tickets import TicketRefused


def _refused(request: HttpRequest, message: str, *, status: int = 400) -> HttpResponse:
    return render(request, "dsr/public_invalid.html", {"message": message}, status=status)


def _status_of(exc: TicketRefused | ChallengeFailed) -> int:
    if isinstance(exc, IntakeThrottled):
        return 429
    if isinstance(exc, ChallengeFailed) and exc.locked:
        return 403
    return 400


def _done(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    return render(request, "dsr/public_verified.html", {"ticket": ticket})


@never_cache
@require_http_methods(["GET", "POST"])
def public_request(request: HttpRequest) -> HttpResponse:
    form = PublicRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "GET" or not form.is_valid():
        return render_form(request, "dsr/public_request.html", {"form": form})
    try:
        _intake, token = dsr_request_public(
            email=form.cleaned_data["email"],
            type=form.cleaned_data["type"],
            jurisdiction=form.jurisdiction,
            details=form.cleaned_data["details"],
            direct_marketing=form.cleaned_data["direct_marketing"],
            ip_address=client_ip(request),
        )
    except TicketRefused as exc:
        form.add_error(None, exc.message)
        return render_form(
            request, "dsr/public_request.html", {"form": form}, status=_status_of(exc)
        )
    return redirect("dsr:public_verify", token=token)


def _code_page(
    request: HttpRequest, ticket: Ticket, form: CodeForm, *, status: int | None = None
) -> HttpResponse:
    return render_form(
        request, "dsr/public_verify.html", {"ticket": ticket, "form": form}, status=status
    )


@never_cache
@require_http_methods(["GET", "POST"])
def public_verify(request: HttpRequest, token: str) -> HttpResponse:
    """GET: "we sent a code" with the code form. POST: the code, or "send a new code"."""
    try:
        ticket = public_ticket_from_token(token)
    except TicketRefused as exc:
        return _refused(request, exc.message)
    if challenge_answered(ticket=ticket, purpose="verify"):
        # Only once the newest code was entered: the page must not tell someone who typed
        # another person's address that it has a request verified earlier.
        return _done(request, ticket)
    if request.method == "GET":
        return _code_page(request, ticket, CodeForm())
    if request.POST.get("action") == "resend":
        try:
            dsr_public_resend(token=token, ip_address=client_ip(request))
        except TicketRefused as exc:
            return _code_page(request, ticket, _with_error(exc.message), status=_status_of(exc))
        messages.success(request, "We sent a new code. The earlier code no longer works.")
        return redirect("dsr:public_verify", token=token)
    form = CodeForm(request.POST)
    if not form.is_valid():
        return _code_page(request, ticket, form)
    try:
        ticket = dsr_public_verify(token=token, code=form.cleaned_data["code"])
    except (ChallengeFailed, TicketRefused) as exc:
        form.add_error("code", exc.message)
        return _code_page(request, ticket, form, status=_status_of(exc))
    return _done(request, ticket)


def _with_error(message: str) -> CodeForm:
    form = CodeForm(data={})
    form.is_valid()
    form.errors.clear()
    form.add_error(None, message)
    return form


@never_cache
@require_http_methods(["GET", "POST"])
def public_verify_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a confirm button (nothing used up). POST: verified."""
    try:
        if request.method == "GET":
            ticket = challenge_link_check(token=token, purpose="verify", use=False)
            return render(request, "dsr/public_link.html", {"ticket": ticket})
        ticket = dsr_public_verify_link(token=token)
    except ChallengeFailed as exc:
        return _refused(request, exc.message, status=_status_of(exc))
    return _done(request, ticket)
