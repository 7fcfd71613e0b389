from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import Notification, User


def notification_create(
    *, user: User, title: str, body: str = "", link: str = "", actor: User | None = None
) -> Notification:
    """The one way any app tells a user something on the site."""
    del actor  # notifications are not audited; the action that causes one is
    return Notification.objects.create(user=user, title=title[:200], body=body, link=link[:500])


def notification_mark_read(*, user: User, notification_id: int) -> bool:
    """Mark one of *user*'s notifications read; another user's id simply matches nothing."""
    updated = Notification.objects.filter(
        pk=notification_id, user=user, read_at__isnull=True
    ).update(read_at=timezone.now())
    return updated == 1


@transaction.atomic
def notification_mark_all_read(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
