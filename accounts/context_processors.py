from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.selectors import notification_unread_count


def site(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    unread: Any = 0
    if user is not None and user.is_authenticated:
        # Lazy: pages that never render the header pay nothing.
        unread = SimpleLazyObject(lambda: notification_unread_count(user=user))
    return {"site_name": settings.SITE_NAME, "unread_notifications": unread}
