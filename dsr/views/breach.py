"""The breach notice page and its "I have read this" button (BRE-1)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.views.common import safe_next
from common.http import AuthedRequest
from dsr.services.breach_notify import breach_notice_acknowledge, breach_notice_for_user


@never_cache
@login_required
@require_GET
def breach_notice(request: AuthedRequest, notice_id: int) -> HttpResponse:
    """The stored message of one of the user's own notices; anyone else's is a 404."""
    notice = breach_notice_for_user(user=request.user, notice_id=notice_id)
    if notice is None:
        raise Http404("No such notice.")
    return render(request, "dsr/breach_notice.html", {"notice": notice})


@login_required
@require_POST
def breach_ack(request: AuthedRequest, notice_id: int) -> HttpResponse:
    """Acknowledge one of the user's own notices (the banner disappears); others: 404."""
    if not breach_notice_acknowledge(user=request.user, notice_id=notice_id):
        raise Http404("No such notice.")
    default = reverse("dsr:breach_notice", args=[notice_id])
    return HttpResponseRedirect(safe_next(request, default))
