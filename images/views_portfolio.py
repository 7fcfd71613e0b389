"""The public portfolio and the customer's per-image permission (IMG-3). Thin: services decide.

Public images are never given a permanent URL: each request for one checks that the item
is published and its permission live, then redirects to a signed link of at most
SIGNED_URL_MAX_AGE (5 minutes), so a withdrawn image stops loading at once.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from common.http import AuthedRequest, RequestMeta
from consent.services.ledger import ConsentRefused
from images.models import Result
from images.selectors import (
    portfolio_permission_owned,
    portfolio_public_file,
    portfolio_public_items,
)
from images.services.access import signed_url
from images.services.portfolio import (
    PortfolioRefused,
    portfolio_permission_grant,
    portfolio_permission_withdraw,
    portfolio_target,
)
from orders.selectors import order_get_for_viewer


def portfolio_page(request: HttpRequest) -> HttpResponse:
    items = list(portfolio_public_items())
    response = render(request, "images/portfolio.html", {"items": items})
    # A withdrawn item must not linger in a shared cache.
    response["Cache-Control"] = "no-cache, max-age=0"
    return response


@never_cache
def portfolio_image(request: HttpRequest, item_id: int, side: str) -> HttpResponseBase:
    item, name = portfolio_public_file(item_id=item_id, side=side)
    return redirect(
        signed_url(
            name=name,
            filename=f"portfolio-{item.pk}-{side}.jpg",
            content_type="image/jpeg",
            download=False,
        )
    )


def _refused(request: HttpRequest, message: str, status: int, back: str) -> HttpResponse:
    context = {"message": message, "back": back}
    return render(request, "images/portfolio_refused.html", context, status=status)


@login_required
@require_POST
def portfolio_permission(request: AuthedRequest, result_id: int) -> HttpResponseBase:
    """Allow (allow=1) or withdraw (allow=0) one delivered image, from the order page."""
    result = get_object_or_404(Result.objects.select_related("order"), pk=result_id)
    # The order selector is the one owner check: another customer's result is a 404.
    order = order_get_for_viewer(user=request.user, reference=result.order.reference)
    back = reverse("orders:detail", args=[order.reference]) + "#portfolio"
    allow = request.POST.get("allow", "")
    if allow not in ("0", "1"):
        return _refused(request, "Choose whether to allow or withdraw the permission.", 400, back)
    meta = RequestMeta.of(request)
    try:
        if allow == "1":
            result.order = order
            portfolio_permission_grant(
                user=request.user,
                result=result,
                meta=meta,
                wording_digest=request.POST.get("wording_digest", ""),
            )
            messages.success(request, "Thank you: this photo may now be shown in our portfolio.")
        else:
            portfolio_permission_withdraw(
                user=request.user, target=portfolio_target(result.pk), meta=meta
            )
            messages.success(
                request,
                "Permission withdrawn: the photo is no longer shown in the portfolio "
                "and its portfolio copies are being deleted.",
            )
    except PortfolioRefused as exc:
        return _refused(request, exc.message, 409, back)
    except ConsentRefused as exc:
        return _refused(request, str(exc), 409, back)
    return redirect(back)


def _safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next", "")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("orders:list")


@login_required
@require_POST
def portfolio_withdraw(request: AuthedRequest) -> HttpResponseBase:
    """One-click withdrawal by target (the account's privacy page, or any list of them)."""
    target = request.POST.get("target", "")
    if not portfolio_permission_owned(user=request.user, target=target):
        raise Http404("No such permission.")
    try:
        portfolio_permission_withdraw(
            user=request.user, target=target, meta=RequestMeta.of(request)
        )
    except ConsentRefused as exc:
        return _refused(request, str(exc), 409, _safe_next(request))
    messages.success(
        request,
        "Permission withdrawn: the photo is no longer shown in the portfolio "
        "and its portfolio copies are being deleted.",
    )
    return redirect(_safe_next(request))
