"""Writes for the accounts app. Views, admin and tasks call these; nothing else writes."""

from accounts.services.audit import audit_log_write
from accounts.services.notifications import (
    notification_create,
    notification_mark_all_read,
    notification_mark_read,
)

__all__ = [
    "audit_log_write",
    "notification_create",
    "notification_mark_all_read",
    "notification_mark_read",
]
