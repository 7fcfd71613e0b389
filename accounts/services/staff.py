from __future__ import annotations

from django.db import transaction

from accounts.models import AuditAction, User
from accounts.services.audit import audit_log_write


def user_update_by_staff(
    *, actor: User, user: User, changed_fields: list[str], ip_address: str | None
) -> None:
    """Save a staff member's edit of a user, with its audit row, in one transaction."""
    with transaction.atomic():
        user.email = user.email.strip().lower()
        user.save()
        if changed_fields:
            audit_log_write(
                actor=actor,
                action=AuditAction.STAFF_USER_EDIT,
                subject=user,
                ip_address=ip_address,
                detail={"fields": sorted(changed_fields)},
            )
