"""The processing register's records: disclosures of personal data to third parties (DSR-5).

Every hand-over (a processor export, logs to an authority after an attack, a marketing
partner) is recorded when it happens, with the recipient, the data categories, the
purpose, the date and whose data it included. The California "Shine the Light" answer
(DSR-4) is read from these records by ``disclosures_for_subject``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts.models import AuditAction, User
from accounts.services.audit import audit_log_write
from consent.models import Disclosure, DisclosureSubject, ProcessingPurpose, Recipient
from dsr.registry import Category

# Subjects are written in slices: an authority's log export may name many thousands.
SUBJECT_CHUNK = 2000


class DisclosureRefused(ValueError):
    """A disclosure that cannot be recorded as given (unknown category, no purpose...)."""


def _purpose(purpose: ProcessingPurpose | str) -> ProcessingPurpose:
    if isinstance(purpose, ProcessingPurpose):
        return purpose
    found = ProcessingPurpose.objects.filter(key=purpose).first()
    if found is None:
        raise DisclosureRefused(f"Unknown purpose of processing: {purpose!r}.")
    return found


def _user_ids(users: Iterable[Any] | QuerySet[Any]) -> Iterable[int]:
    """Ids of *users* that exist: users may be User rows, ids, or a queryset of ids."""
    if isinstance(users, QuerySet):
        if users.model is User:
            ids: Any = users.values("pk")
        else:
            ids = users
        return (
            User.objects.filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", flat=True)
            .iterator(chunk_size=SUBJECT_CHUNK)
        )
    wanted = {u if isinstance(u, int) else u.pk for u in users}
    # A log line may name an account erased since: its disclosure cannot point to it.
    return sorted(User.objects.filter(pk__in=wanted).values_list("pk", flat=True))


def _subjects_create(disclosure: Disclosure, users: Any, emails: Iterable[str]) -> int:
    count = 0
    batch: list[DisclosureSubject] = []
    for user_id in _user_ids(users):
        batch.append(DisclosureSubject(disclosure=disclosure, user_id=user_id))
        if len(batch) >= SUBJECT_CHUNK:
            DisclosureSubject.objects.bulk_create(batch)
            count += len(batch)
            batch = []
    for email in sorted({e.strip().lower() for e in emails if e and e.strip()}):
        batch.append(DisclosureSubject(disclosure=disclosure, email=email))
    if batch:
        DisclosureSubject.objects.bulk_create(batch, batch_size=SUBJECT_CHUNK)
        count += len(batch)
    return count


@transaction.atomic
def disclosure_record(
    *,
    actor: User | None,
    recipient: Recipient,
    categories: Iterable[str],
    purpose: ProcessingPurpose | str,
    description: str,
    for_direct_marketing: bool = False,
    users: Iterable[Any] | QuerySet[Any] = (),
    emails: Iterable[str] = (),
    subjects_description: str = "",
    disclosed_at: datetime | None = None,
) -> Disclosure:
    """Record one disclosure with its subjects; audited in the same transaction (DSR-5).

    *users* may be users, user ids, or a queryset of either (streamed, for large
    hand-overs); ids of accounts that no longer exist are left out.
    """
    cats = sorted(set(categories))
    if not cats:
        raise DisclosureRefused("Name the categories of personal data disclosed.")
    unknown = set(cats) - set(Category.values)
    if unknown:
        raise DisclosureRefused(f"Unknown data categories: {', '.join(sorted(unknown))}.")
    if not description.strip():
        raise DisclosureRefused("Describe what was handed over, and why.")
    when = disclosed_at or timezone.now()
    if when > timezone.now() + timedelta(minutes=5):
        raise DisclosureRefused("A disclosure is recorded when it has happened, not before.")
    disclosure = Disclosure.objects.create(
        recipient=recipient,
        disclosed_at=when,
        categories=cats,
        purpose=_purpose(purpose),
        for_direct_marketing=for_direct_marketing,
        description=description.strip(),
        subjects_description=subjects_description.strip()[:300],
        recorded_by=actor if actor is not None and actor.is_authenticated else None,
    )
    subjects = _subjects_create(disclosure, users, emails)
    audit_log_write(
        actor=actor,
        action=AuditAction.DISCLOSURE_RECORDED,
        detail={
            "disclosure": disclosure.pk,
            "recipient": recipient.name,
            "categories": cats,
            "purpose": disclosure.purpose.key,
            "for_direct_marketing": for_direct_marketing,
            "subjects": subjects,
            "disclosed_at": when.isoformat(),
        },
    )
    return disclosure


def disclosures_for_subject(
    *,
    user: Any = None,
    email: str = "",
    year: int | None = None,
    direct_marketing: bool | None = None,
) -> QuerySet[Disclosure]:
    """Disclosures that included this person's data, oldest first, with their recipients.

    A person is matched by account and by email address (a disclosure recorded before
    they registered names only the address; an address also finds its account's).
    *year* keeps one calendar year (UTC), e.g. the preceding one for a Shine-the-Light
    answer; *direct_marketing* keeps those made (or not) for the recipient's direct
    marketing.
    """
    address = (email or "").strip().lower()
    match = Q()
    if user is not None:
        match |= Q(user_id=user if isinstance(user, int) else user.pk)
        if not address and not isinstance(user, int):
            address = (user.email or "").strip().lower()
    if address:
        # By address: recorded by address, or linked to the account that has it now.
        match |= Q(email=address) | Q(user__email__iexact=address)
    if not match:
        return Disclosure.objects.none()
    qs = Disclosure.objects.filter(
        Exists(DisclosureSubject.objects.filter(match, disclosure=OuterRef("pk")))
    )
    if year is not None:
        qs = qs.filter(disclosed_at__year=year)
    if direct_marketing is not None:
        qs = qs.filter(for_direct_marketing=direct_marketing)
    return qs.select_related("recipient", "purpose").order_by("disclosed_at", "pk")


# --- The published register (TRN-1) ------------------------------------------------------------
# The European Economic Area: the EU member states plus Iceland, Liechtenstein and Norway.
# A transfer to any other country needs a safeguard (GDPR Chapter V), published per recipient.
EEA_COUNTRIES = frozenset(
    {
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "IS",
        "LI",
        "NO",
    }
)


def recipients_published() -> list[dict[str, Any]]:
    """Active processors and other recipients as the privacy page lists them (two queries)."""
    labels = dict(Category.choices)
    rows = []
    for recipient in Recipient.objects.filter(active=True).prefetch_related("purposes"):
        country: Any = recipient.country  # a django-countries Country
        code = str(country.code or "")
        rows.append(
            {
                "recipient": recipient,
                "categories": [labels.get(c, c) for c in recipient.data_categories],
                "purposes": [p.name for p in recipient.purposes.all()],
                "country": country.name,
                "outside_eea": code not in EEA_COUNTRIES,
                "safeguard": recipient.get_transfer_safeguard_display(),
            }
        )
    return rows
