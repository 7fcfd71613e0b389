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
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from accounts.models import AuditAction
from accounts.services.audit import audit_log_write
from consent.models import Audience, AudienceMember, AudienceRule, ConsentPurpose, ConsentState
from orders.models import Order, OrderKind

RULE_KINDS = {
    AudienceRule.PASSPORT_CUSTOMERS: OrderKind.PASSPORT,
    AudienceRule.RETOUCH_CUSTOMERS: OrderKind.RETOUCH,
}


def _not_profiled() -> Q:
    """Customers no audience may take in (the rebuild also drops them as members):
    restricted (GDPR Art. 18, DSR-1: no profiling), or who said no to marketing (an
    objection to direct marketing covers profiling for it, Art. 21(2)-(3), CON-2)."""
    from dsr.selectors import restricted_email_exists, restricted_user_exists

    newsletter = ConsentState.objects.filter(purpose__key=ConsentPurpose.MARKETING_EMAIL, target="")
    said_no = newsletter.filter(user_id=OuterRef("customer_id"), granted=False)
    # ... unless they subscribed again since (by address: a double opt-in).
    said_yes = newsletter.filter(
        Q(user_id=OuterRef("customer_id")) | Q(email__iexact=OuterRef("customer__email")),
        granted=True,
    )
    return (
        Q(restricted_user_exists("customer_id"))
        | Q(restricted_email_exists("customer__email"))
        | (Q(Exists(said_no)) & ~Q(Exists(said_yes)))
    )


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
        .exclude(_not_profiled())
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
