"""The second, independent check: is anything older than its limit still here?

Runs after each purge. The promise "at most N days" is verified against the data, not
assumed from the purge's own report.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.contrib.auth.models import Group
from django.db.models import Q
from django.urls import reverse

from accounts.models import User
from accounts.roles import PRIVACY_OFFICER
from accounts.services import notification_create
from dsr.models import RetentionRun
from dsr.registry import PersonalData, Retention, registry

logger = logging.getLogger("dsr.retention")


def overdue_count(entry: PersonalData, rule: Retention, now: datetime) -> int:
    limit = now - rule.period()
    qs = entry.model._default_manager.filter(**{f"{rule.clock}__lt": limit})
    if rule.filter is not None:
        qs = qs.filter(rule.filter)
    if rule.action == "anonymise":
        cond = Q()
        for field_name, value in rule.anonymise.items():
            cond |= (
                ~Q(**{field_name: value})
                if value is not None
                else Q(**{f"{field_name}__isnull": False})
            )
        qs = qs.filter(cond)
    return qs.count()


def privacy_officers() -> list[User]:
    group = Group.objects.filter(name=PRIVACY_OFFICER).first()
    q = Q(is_superuser=True)
    if group is not None:
        q |= Q(groups=group)
    return list(User.objects.filter(q, is_active=True).distinct())


def retention_verify(*, now: datetime, runs: list[RetentionRun] | None = None) -> dict[str, int]:
    """Count overdue rows per rule; alert every privacy officer when any remain."""
    overdue = {}
    for entry, rule in registry.retention_rules():
        n = overdue_count(entry, rule, now)
        if n:
            overdue[entry.rule_key(rule)] = n
    if overdue:
        summary = ", ".join(f"{label}: {n}" for label, n in sorted(overdue.items()))
        logger.error(
            "retention verification failed: rows older than their limit remain (%s)", summary
        )
        link = reverse("admin:dsr_retentionrun_changelist")
        for officer in privacy_officers():
            notification_create(
                user=officer,
                title="Retention check failed: data older than its limit remains",
                body=f"Rows still older than their retention limit: {summary}. "
                "See the retention run reports for the errors.",
                link=link,
            )
    return overdue
