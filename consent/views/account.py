"""Pages: "My privacy choices", where every consent is one click to give or withdraw (CON-3)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from common.http import AuthedRequest, RequestMeta
from consent.models import ConsentMethod
from consent.selectors import (
    account_purpose,
    account_purposes,
    consent_history_for,
    consent_states_for,
)
from consent.services.account import consent_toggle
from consent.services.ledger import ConsentRefused


def _page(request: AuthedRequest, *, status: int = 200) -> HttpResponse:
    from images.selectors import portfolio_permissions

    states = {(s.purpose.key, s.target): s for s in consent_states_for(user=request.user)}
    rows = [(p, states.get((p.key, ""))) for p in account_purposes()]
    return render(
        request,
        "consent/mine.html",
        {
            "rows": rows,
            "history": consent_history_for(user=request.user)[:100],
            "evidence_years": round(settings.CONSENT_EVIDENCE_DAYS / 365, 1),
            "portfolio_permissions": portfolio_permissions(user=request.user),
        },
        status=status,
    )


@login_required
def my_privacy(request: AuthedRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def my_privacy_toggle(request: AuthedRequest, key: str) -> HttpResponse:
    purpose = account_purpose(key=key)
    if purpose is None:
        raise Http404("No such choice.")
    action = request.POST.get("action")
    if action not in ("grant", "withdraw"):
        messages.error(request, "Unknown choice: please use the buttons.")
        return _page(request, status=400)
    try:
        consent_toggle(
            user=request.user,
            purpose=purpose,
            granted=action == "grant",
            method=ConsentMethod.FORM,
            meta=RequestMeta.of(request),
        )
    except ConsentRefused as exc:
        messages.error(request, str(exc))
        return _page(request, status=400)
    else:
        verb = "given" if action == "grant" else "withdrawn"
        messages.success(request, f"{purpose.name}: consent {verb}.")
    return HttpResponseRedirect(reverse("consent:mine"))


urlpatterns: list[Any] = [
    path("mine/", my_privacy, name="mine"),
    path("mine/<slug:key>/", my_privacy_toggle, name="mine_toggle"),
]
