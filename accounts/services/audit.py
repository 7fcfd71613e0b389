from __future__ import annotations

from typing import Any

from accounts.models import AuditAction, AuditEvent, User


def audit_log_write(
    *,
    actor: User | None,
    action: AuditAction,
    subject: User | None = None,
    ip_address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit row. Call it inside the transaction that makes the change."""
    actor_obj = actor if actor is not None and actor.is_authenticated else None
    return AuditEvent.objects.create(
        actor=actor_obj,
        action=action,
        subject=subject,
        ip_address=ip_address,
        detail=detail or {},
    )
