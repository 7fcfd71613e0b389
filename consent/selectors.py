"""Reads of the consent app: "may we do X for this subject now?" and the processing register.

Every feature that needs consent asks ``consent_allows`` (one subject) or filters with
``consent_granted`` (a batch, e.g. a campaign's recipients) at the moment it acts, never
earlier: a withdrawal takes effect for the very next action (CON-2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet

from consent.models import (
    ConsentEvent,
    ConsentPurpose,
    ConsentState,
    LawfulBasis,
    PolicyStatus,
    PolicyVersion,
    ProcessingPurpose,
    PurposeKind,
    subject_key,
)
from dsr.purposes import PURPOSES


def consent_allows(
    *,
    purpose: str,
    user: Any = None,
    email: str = "",
    visitor: str = "",
    target: str = "",
    request: Any = None,
) -> bool:
    """True only if the subject's latest recorded choice for *purpose* (and *target*) is "yes".

    Cookie purposes are per browser: pass the request, and a Do Not Track or Global
    Privacy Control signal refuses them whatever was chosen before (CON-4).
    """
    if purpose in ConsentPurpose.COOKIE_KEYS and request is not None:
        consent = getattr(request, "consent", None)
        return bool(consent is not None and consent.allows(purpose))
    user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    if user_id is None and not email and not visitor:
        return False
    key = subject_key(user_id=user_id, email=email, visitor=visitor)
    return ConsentState.objects.filter(
        subject=key, purpose__key=purpose, purpose__active=True, target=target, granted=True
    ).exists()


def consent_granted(
    *, purpose: str, subject_ref: str = "consent_subject", target: str = ""
) -> Exists:
    """An EXISTS expression for querysets whose rows carry a ledger subject key (a batch check)."""
    return Exists(
        ConsentState.objects.filter(
            subject=OuterRef(subject_ref),
            purpose__key=purpose,
            purpose__active=True,
            target=target,
            granted=True,
        )
    )


def cookie_purposes() -> QuerySet[ConsentPurpose]:
    """What the banner and the cookie settings page offer, in order."""
    return ConsentPurpose.objects.filter(kind=PurposeKind.COOKIE, active=True)


def account_purposes() -> list[ConsentPurpose]:
    """The consents a person gives once, for themselves ("My privacy choices", the API)."""
    # Cookie choices belong to a browser (the cookie page) and per-image permissions to
    # their images (the portfolio list); the rest is given once per person.
    return list(
        ConsentPurpose.objects.filter(active=True, per_object=False).exclude(
            kind=PurposeKind.COOKIE
        )
    )


def account_purpose(*, key: str) -> ConsentPurpose | None:
    """One of ``account_purposes`` by its key (None: not a choice a person makes here)."""
    return next((p for p in account_purposes() if p.key == key), None)


def consent_states_for(*, user: Any) -> QuerySet[ConsentState]:
    return ConsentState.objects.filter(user=user).select_related("purpose", "event")


def consent_history_for(*, user: Any) -> QuerySet[ConsentEvent]:
    return ConsentEvent.objects.filter(user=user).select_related(
        "purpose", "policy_version", "wording"
    )


def policy_current() -> PolicyVersion | None:
    """The published version in force now (the latest effective one)."""
    from django.utils import timezone

    return (
        PolicyVersion.objects.filter(
            status=PolicyStatus.PUBLISHED, effective_at__lte=timezone.now()
        )
        .order_by("-effective_at", "-number")
        .first()
    )


@dataclass(frozen=True)
class PurposeInfo:
    key: str
    name: str
    basis: str
    interest: str
    description: str = ""

    @property
    def basis_label(self) -> str:
        return str(dict(LawfulBasis.choices).get(self.basis, self.basis))

    @property
    def basis_text(self) -> str:
        if self.basis == LawfulBasis.LEGITIMATE_INTEREST and self.interest:
            return f"{self.basis_label}: {self.interest}"
        return self.basis_label


def processing_purposes() -> dict[str, PurposeInfo]:
    """Every purpose the registry may name: staff's wording where set, else the defaults."""
    result = {
        key: PurposeInfo(key=key, name=d.name, basis=d.basis, interest=d.interest)
        for key, d in PURPOSES.items()
    }
    for row in ProcessingPurpose.objects.all():
        result[row.key] = PurposeInfo(
            key=row.key,
            name=row.name,
            basis=row.lawful_basis,
            interest=row.legitimate_interest,
            description=row.description,
        )
    return result


def duration_text(span: timedelta) -> str:
    """A period as people say it: in hours up to 72 (the image limits are set in hours)."""
    minutes = round(span.total_seconds() / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days < 4:
        hours, days = hours + 24 * days, 0
    parts = []
    for value, unit in ((days, "day"), (hours, "hour"), (mins, "minute")):
        if value:
            parts.append(f"{value} {unit}{'' if value == 1 else 's'}")
    return " ".join(parts) or "at once"


def register_holdings() -> list[dict[str, Any]]:
    """What the privacy page and the API publish per registry entry (TRN-1).

    registry_rows() plus each entry's retention rules (read from the same rules and
    settings the retention engine runs) and, for legal duties, until when.
    """
    from dsr.admin import registry_rows
    from dsr.registry import KeepForLegalDuty, registry

    # The engine sweeps every RETENTION_INTERVAL_MINUTES: a row older than its period goes
    # at the next sweep, so "at the latest" is the period plus one interval.
    interval = timedelta(minutes=settings.RETENTION_INTERVAL_MINUTES)
    rows = []
    for row in registry_rows():
        entry = registry.get(row["label"])
        assert entry is not None
        rules = entry.rules
        kept_until = ""
        if isinstance(entry.erasure, KeepForLegalDuty) and rules:
            longest = max(rules, key=lambda rule: rule.period())
            kept_until = longest.describe()
        rule_rows = [
            {
                "text": rule.describe(),
                "period": rule.period(),
                "latest": duration_text(rule.period() + interval),
                "latest_period": rule.period() + interval,
                "after": rule.after or rule.clock.replace("_", " "),
                "action": rule.action,
            }
            for rule in rules
        ]
        rows.append({**row, "rules": rule_rows, "kept_until": kept_until})
    return rows
