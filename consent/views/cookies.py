"""Pages: the cookie banner's target and the cookie settings page (CON-4)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from accounts.views.common import safe_next
from consent.cookies import CookieConsent, cookie_consent_read, cookie_consent_store
from consent.models import ConsentMethod, ConsentPurpose
from consent.selectors import cookie_purposes
from consent.services.cookies import cookie_choices_parse, cookie_choices_save
from consent.services.ledger import ConsentRefused

ACTIONS = ("accept_all", "reject_all", "save", "dismiss_notice")


def _consent(request: HttpRequest) -> CookieConsent:
    consent = getattr(request, "consent", None)
    return consent if consent is not None else cookie_consent_read(request)


def _next_url(request: HttpRequest) -> str:
    return safe_next(request, reverse("consent:cookies"))


def _page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    consent = _consent(request)
    rows = [(purpose, consent.allows(purpose.key)) for purpose in cookie_purposes()]
    return render(
        request,
        "consent/cookies.html",
        {"rows": rows, "consent": consent, "error": error},
        status=status,
    )


@require_http_methods(["GET", "POST"])
def cookie_settings(request: HttpRequest) -> HttpResponse:
    """GET: what this browser allows. POST: the banner's or this page's choice."""
    if request.method == "GET":
        return _page(request)
    consent = _consent(request)
    action = request.POST.get("action", "save")
    if action not in ACTIONS:
        return _page(request, error="Unknown choice: please use one of the buttons.", status=400)
    if action == "dismiss_notice":
        consent.notice_dismissed = True
        response: HttpResponse = HttpResponseRedirect(_next_url(request))
        if consent.visitor:
            cookie_consent_store(response, consent)
        return response
    try:
        ticked = cookie_choices_parse(request.POST.getlist("granted"))
    except ConsentRefused as exc:
        return _page(request, error=str(exc), status=400)
    granted = {
        "accept_all": set(ConsentPurpose.COOKIE_KEYS),
        "reject_all": set(),
        "save": ticked,
    }[action]
    method = ConsentMethod.BANNER if request.POST.get("source") == "banner" else ConsentMethod.FORM
    consent = cookie_choices_save(request=request, consent=consent, granted=granted, method=method)
    response = HttpResponseRedirect(_next_url(request))
    cookie_consent_store(response, consent)
    return response


urlpatterns: list[Any] = [path("cookies/", cookie_settings, name="cookies")]
