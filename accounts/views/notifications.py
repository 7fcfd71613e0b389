from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.selectors import notification_get_for_user, notification_list_for_user
from accounts.services import notification_mark_all_read, notification_mark_read
from common.http import AuthedRequest


@login_required
def inbox(request: AuthedRequest) -> HttpResponse:
    page = Paginator(notification_list_for_user(user=request.user), 25).get_page(
        request.GET.get("page")
    )
    return render(request, "accounts/notifications.html", {"page": page})


@login_required
@require_POST
def mark_read(request: AuthedRequest, notification_id: int) -> HttpResponse:
    notification = notification_get_for_user(user=request.user, notification_id=notification_id)
    notification_mark_read(user=request.user, notification_id=notification.pk)
    return redirect("accounts:notifications")


@login_required
@require_POST
def mark_all_read(request: AuthedRequest) -> HttpResponse:
    notification_mark_all_read(user=request.user)
    return redirect("accounts:notifications")
