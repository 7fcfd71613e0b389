"""Reads for the accounts app, always scoped to the requesting user."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import ApiToken, Notification, User


def notification_list_for_user(*, user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user).order_by("-created_at", "-id")


def notification_get_for_user(*, user: User, notification_id: int) -> Notification:
    return get_object_or_404(Notification, pk=notification_id, user=user)


def notification_unread_count(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def api_tokens_for_user(*, user: User) -> QuerySet[ApiToken]:
    """The user's tokens that still work, newest first (expired ones are not listed)."""
    return ApiToken.objects.filter(
        Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()), user=user
    ).order_by("-created", "-token_key")


def api_token_get_for_user(*, user: User, token_key: str) -> ApiToken:
    token = api_tokens_for_user(user=user).filter(token_key=token_key).first()
    if token is None:
        raise Http404("No such token.")
    return token
