"""Marketing audiences built from site use (CON-6).

A member's ``activity_at`` is the time of their latest qualifying order; the registry's
retention rule for AudienceMember (consent/privacy.py) deletes members whose activity is
older than MARKETING_AUDIENCE_RETENTION_DAYS (at most 540), and a rebuild never adds
anyone whose qualifying use is older than that. Being in an audience never replaces
consent: a campaign to an audience reaches only members who are subscribers with consent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import AuditAction
from accounts.services.audit import audit_log_write
from consent.models import Audience, AudienceMember, AudienceRule
from orders.models import Order, OrderKind

RULE_KINDS = {
    AudienceRule.PASSPORT_CUSTOMERS: OrderKind.PASSPORT,
    AudienceRule.RETOUCH_CUSTOMERS: OrderKind.RETOUCH,
}


@transaction.atomic
def audience_build(*, audience: Audience, actor: Any, ip_address: str | None = None) -> int:
    """(Re)build *audience* from paid orders inside the retention window; returns its size."""
    audience = Audience.objects.select_for_update().get(pk=audience.pk)
    now = timezone.now()
    since = now - timedelta(days=settings.MARKETING_AUDIENCE_RETENTION_DAYS)
    latest = dict(
        Order.objects.filter(
            kind=RULE_KINDS[AudienceRule(audience.rule)],
            customer__isnull=False,
            customer__is_active=True,
            paid_at__isnull=False,
            paid_at__gte=since,
        )
        .values("customer_id")
        .annotate(last=Max("paid_at"))
        .values_list("customer_id", "last")
    )
    AudienceMember.objects.filter(audience=audience).exclude(user_id__in=list(latest)).delete()
    existing = {
        m.user_id: m
        for m in AudienceMember.objects.filter(audience=audience).only(
            "pk", "user_id", "activity_at"
        )
    }
    AudienceMember.objects.bulk_create(
        [
            AudienceMember(audience=audience, user_id=user_id, activity_at=when)
            for user_id, when in latest.items()
            if user_id not in existing
        ],
        batch_size=1000,
    )
    changed = []
    for user_id, member in existing.items():
        if member.activity_at != latest[user_id]:
            member.activity_at = latest[user_id]
            changed.append(member)
    AudienceMember.objects.bulk_update(changed, ["activity_at"], batch_size=1000)
    audience.built_at = now
    audience.save(update_fields=["built_at", "updated_at"])
    audit_log_write(
        actor=actor,
        action=AuditAction.AUDIENCE_BUILT,
        ip_address=ip_address,
        detail={"audience": audience.pk, "members": len(latest)},
    )
    return len(latest)
