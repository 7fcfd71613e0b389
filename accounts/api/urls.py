"""The accounts app's REST API (/api/v1/): tokens, the signed-in person, notifications."""

from __future__ import annotations

from typing import Any

from django.urls import path

from accounts.api import tokens, views

urlpatterns: list[Any] = [
    path("auth/tokens/", tokens.TokenListCreate.as_view(), name="accounts-tokens"),
    path("auth/tokens/current/", tokens.TokenCurrent.as_view(), name="accounts-token-current"),
    path("auth/tokens/<str:token_key>/", tokens.TokenDetail.as_view(), name="accounts-token"),
    path("me/", views.Me.as_view(), name="accounts-me"),
    path("me/notifications/", views.NotificationList.as_view(), name="accounts-notifications"),
    path(
        "me/notifications/unread-count/",
        views.NotificationUnreadCount.as_view(),
        name="accounts-notifications-unread-count",
    ),
    path(
        "me/notifications/read-all/",
        views.NotificationReadAll.as_view(),
        name="accounts-notifications-read-all",
    ),
    path(
        "me/notifications/<int:notification_id>/read/",
        views.NotificationRead.as_view(),
        name="accounts-notification-read",
    ),
]
