"""Pages: newsletter subscription (double opt-in) and unsubscribe (CON-1, CON-2, CON-3).

Links in emails only ever show a page on GET; the change happens on the page's POST, so
mail scanners that open links neither subscribe nor unsubscribe anyone.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from common.http import RequestMeta
from consent.models import ConsentMethod, Subscriber
from consent.services.marketing import (
    ConfirmOutcome,
    SubscribeOutcome,
    marketing_optout,
    marketing_status,
    marketing_subscribe_confirm,
    marketing_subscribe_request,
    marketing_wording,
)
from consent.tokens import LinkError, confirmation_read, unsubscribe_read


class NewsletterForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)


def _invalid(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    return render(
        request, "consent/newsletter_link_invalid.html", {"message": message}, status=status
    )


@never_cache
@require_http_methods(["GET", "POST"])
def newsletter(request: HttpRequest) -> HttpResponse:
    user = request.user if request.user.is_authenticated else None
    initial = {"email": user.email} if user is not None else {}
    form = NewsletterForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        outcome = marketing_subscribe_request(
            email=form.cleaned_data["email"], user=user, meta=RequestMeta.of(request)
        )
        if outcome is SubscribeOutcome.SUBSCRIBED:
            messages.success(request, "You are subscribed to the newsletter.")
            return redirect("consent:newsletter")
        return render(request, "consent/newsletter_sent.html")
    return render(
        request,
        "consent/newsletter.html",
        {
            "form": form,
            "wording": marketing_wording(),
            "status": marketing_status(user=user) if user is not None else None,
        },
        status=400 if request.method == "POST" else 200,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def newsletter_confirm(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "GET":
        try:
            claim = confirmation_read(token)
        except LinkError as exc:
            return _invalid(request, exc.message)
        return render(
            request,
            "consent/newsletter_confirm.html",
            {"subscriber": claim.subscriber, "wording": claim.subscriber.wording.text},
        )
    try:
        result = marketing_subscribe_confirm(token=token, meta=RequestMeta.of(request))
    except LinkError as exc:
        return _invalid(request, exc.message)
    return render(
        request,
        "consent/newsletter_confirmed.html",
        {"already": result.outcome is ConfirmOutcome.ALREADY},
    )


def _masked(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}{'*' * max(len(local) - 1, 1)}@{domain}"


# The token in the URL is the credential (only the recipient has it), which is also what
# protects this POST against forgery: RFC 8058 one-click POSTs come from mail providers
# that have no CSRF cookie, so CSRF middleware must not turn them away.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        claim = unsubscribe_read(token)
    except LinkError as exc:
        return _invalid(request, exc.message)
    subscriber = (
        Subscriber.objects.filter(pk=claim.subscriber_id).select_related("user").first()
        if claim.subscriber_id
        else None
    )
    if subscriber is not None and not claim.matches(subscriber.email):
        return _invalid(request, "This unsubscribe link is not valid.")
    # RFC 8058: the body is List-Unsubscribe=One-Click (urlencoded or multipart).
    one_click = request.method == "POST" and request.POST.get("List-Unsubscribe") == "One-Click"
    if request.method == "GET":
        return render(
            request,
            "consent/unsubscribe.html",
            {"address": _masked(subscriber.email) if subscriber else ""},
        )
    if subscriber is not None:
        marketing_optout(
            email=subscriber.email,
            user=subscriber.user,
            method=ConsentMethod.EMAIL_LINK,
            meta=RequestMeta.of(request),
            note="one-click unsubscribe (RFC 8058)" if one_click else "unsubscribe link",
        )
    if one_click:
        # RFC 8058: a plain answer, no redirect, no page to render.
        return HttpResponse("Unsubscribed.\n", content_type="text/plain; charset=utf-8")
    return render(request, "consent/unsubscribe_done.html")


urlpatterns: list[Any] = [
    path("newsletter/", newsletter, name="newsletter"),
    path("newsletter/confirm/<str:token>/", newsletter_confirm, name="newsletter_confirm"),
    path("unsubscribe/<str:token>/", unsubscribe, name="unsubscribe"),
]
