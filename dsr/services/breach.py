"""Breach incidents: declaring one, and confirming it with its scope frozen (BRE-1, BRE-2).

Confirming freezes the scope as a recipient list with one INSERT ... SELECT (a snapshot:
later changes to the data do not change who is told) and stores the users' clock,
1 business day from confirmation by the deadline calendar.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AuditAction, User
from accounts.services import audit_log_write
from dsr import calendar
from dsr.models import BreachNotice, Incident, IncidentRecipient, IncidentStatus
from dsr.services.breach_notify import incident_notify_start
from dsr.services.breach_scope import (
    ScopeError,
    breach_scope_guest_emails,
    breach_scope_users,
)

REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


class IncidentRefused(Exception):
    """An incident action refused as asked; the message is shown to staff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def incident_create(
    *, actor: User, title: str, aware_at: datetime, description: str, **fields: Any
) -> Incident:
    """Enter an incident in the register; the authority's 72-hour clock is stored at once."""
    if not title.strip() or not description.strip():
        raise IncidentRefused("Give the incident a title and say what happened.")
    if timezone.is_naive(aware_at):
        raise IncidentRefused("The time of awareness needs a time zone.")
    with transaction.atomic():
        incident = Incident.objects.create(
            reference="BRE-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8)),
            title=title.strip(),
            aware_at=aware_at,
            authority_due=calendar.breach_authority_due(aware_at),
            description=description.strip(),
            calendar=settings.DSR_CALENDAR,
            created_by=actor,
            **fields,
        )
        if not incident.message_subject.strip() and not incident.message_body.strip():
            incident.message_subject, incident.message_body = incident_message_draft(
                incident=incident
            )
            incident.save(update_fields=["message_subject", "message_body"])
        audit_log_write(
            actor=actor,
            action=AuditAction.BREACH_DECLARED,
            detail={"incident": incident.reference},
        )
    return incident


def incident_message_draft(*, incident: Incident) -> tuple[str, str]:
    """The plain-language message drafted from the register fields (staff then edit it):
    what happened, which data, likely consequences, what was done, what to do, whom to
    contact (GDPR Art. 34(2))."""
    from django.template.loader import render_to_string

    from dsr.registry import Category

    labels = dict(Category.choices)
    body = render_to_string(
        "emails/dsr/breach_draft.txt",
        {
            "incident": incident,
            "categories": [labels.get(c, c) for c in incident.data_categories or []],
            "contact": settings.PRIVACY_CONTACT_EMAIL or settings.DEFAULT_FROM_EMAIL,
        },
    )
    return "A security incident may have affected your data", body.strip() + "\n"


def incident_update(*, incident: Incident, actor: User, changed: list[str]) -> Incident:
    """Save staff's edits of the register entry, audited with the fields' names.

    Recording the authority notification gets its own audit action (Art. 33 evidence).
    """
    with transaction.atomic():
        incident.save()
        authority = {"authority_notified_at", "authority_reference"} & set(changed)
        audit_log_write(
            actor=actor,
            action=(
                AuditAction.BREACH_AUTHORITY_NOTIFIED if authority else AuditAction.BREACH_UPDATED
            ),
            detail={"incident": incident.reference, "fields": sorted(changed)},
        )
    return incident


def _insert_select(sql: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _freeze_users(incident: Incident) -> tuple[int, int]:
    """Recipients and in-site notices of every affected account, in two INSERT ... SELECTs.

    Only table names from model metadata and the ORM's own compiled subquery are put into
    the SQL text; every value goes as a parameter.
    """
    users_sql, users_params = (
        breach_scope_users(scope=incident.scope).values("pk").query.sql_with_params()
    )
    recipients = _insert_select(
        f"INSERT INTO {IncidentRecipient._meta.db_table} "  # noqa: S608 - see docstring
        "(incident_id, user_id, email, status, attempts, last_error) "
        f"SELECT %s, u.id, LOWER(u.email), 'pending', 0, '' FROM {User._meta.db_table} u "
        f"WHERE u.id IN ({users_sql}) ON CONFLICT DO NOTHING",
        [incident.pk, *users_params],
    )
    notices = _insert_select(
        f"INSERT INTO {BreachNotice._meta.db_table} (incident_id, user_id, created_at) "  # noqa: S608
        f"SELECT %s, u.id, %s FROM {User._meta.db_table} u "
        f"WHERE u.id IN ({users_sql}) ON CONFLICT DO NOTHING",
        [incident.pk, timezone.now(), *users_params],
    )
    return recipients, notices


def incident_confirm(*, incident: Incident, actor: User, now: datetime | None = None) -> Incident:
    """Confirm the breach: freeze the scope and start the users' 1-business-day clock.

    Refused with a reason for an empty scope or no message. The fan-out of emails and
    in-site notices starts from the frozen list.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if locked.status != IncidentStatus.DRAFT:
            raise IncidentRefused(f"{locked.reference} is already confirmed.")
        if not locked.message_subject.strip() or not locked.message_body.strip():
            raise IncidentRefused("Write the message to the affected before confirming.")
        try:
            recipients, notices = _freeze_users(locked)
            guests = breach_scope_guest_emails(scope=locked.scope)
        except ScopeError as exc:
            raise IncidentRefused(str(exc)) from exc
        IncidentRecipient.objects.bulk_create(
            [IncidentRecipient(incident=locked, email=email) for email in guests],
            ignore_conflicts=True,
            batch_size=5000,
        )
        total = locked.recipients.count()
        if total == 0:
            raise IncidentRefused("The scope finds nobody: nothing would be sent.")
        locked.status = IncidentStatus.CONFIRMED
        locked.confirmed_at = now
        locked.confirmed_by = actor
        locked.users_due = calendar.breach_users_due(now, locked.calendar or settings.DSR_CALENDAR)
        locked.save()
        audit_log_write(
            actor=actor,
            action=AuditAction.BREACH_CONFIRMED,
            detail={
                "incident": locked.reference,
                "recipients": total,
                "notices": notices,
                "accounts": recipients,
            },
        )
        # Emails start when this transaction commits (fanout_enqueue uses on_commit).
        incident_notify_start(incident=locked, actor=actor)
    incident.refresh_from_db()
    return incident
