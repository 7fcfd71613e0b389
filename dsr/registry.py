"""The personal-data registry: every model holding personal data declares it once.

Each app has a ``privacy.py`` (discovered at start-up, like admin.py) that calls
``registry.register(PersonalData(...))``. Everything that must cover "all personal
data" walks this registry: the retention engine, the DSR export and erasure, the breach
scope, and the privacy page. A system check (dsr/checks.py) fails when a model linked to
a user, or a field marked personal, is not declared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import models


class Category(models.TextChoices):
    CONTACT = "contact", "Contact details"
    IDENTITY = "identity", "Identity"
    CREDENTIALS = "credentials", "Credentials"
    ACCOUNT = "account", "Account state"
    PREFERENCES = "preferences", "Preferences"
    IMAGE = "image", "Images"
    CONTENT = "content", "Messages and content"
    NETWORK = "network", "Network and device data"
    USAGE = "usage", "Site usage"
    PAYMENT_REFERENCE = "payment_reference", "Payment references"
    SECURITY = "security", "Security events"


# --- Erasure: what happens to a row when its subject is erased --------------------------------
@dataclass(frozen=True)
class Delete:
    """Delete the rows (and their stored files)."""

    def describe(self) -> str:
        return "deleted"


@dataclass(frozen=True)
class Anonymise:
    """Overwrite the listed fields with the given values; the row stays.

    A value may be a callable ``lambda row: value``, evaluated per row by the erasure (a
    unique column such as the account's email cannot take one constant for every row).
    """

    values: Mapping[str, Any]

    def describe(self) -> str:
        return "anonymised (" + ", ".join(sorted(self.values)) + ")"

    @property
    def constant(self) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if not callable(v)}

    @property
    def per_row(self) -> dict[str, Callable[[Any], Any]]:
        return {k: v for k, v in self.values.items() if callable(v)}

    def row_values(self, row: Any) -> dict[str, Any]:
        return {k: v(row) if callable(v) else v for k, v in self.values.items()}


# The address an erased account is left with: unique per row, and in a domain reserved by
# RFC 2606 (.invalid), so no mail to it can ever reach anyone.
ERASED_EMAIL_DOMAIN = "erased.invalid"


def erased_email(row: Any) -> str:
    return f"erased-{row.pk}@{ERASED_EMAIL_DOMAIN}"


def is_erased_email(email: str) -> bool:
    return (email or "").lower().endswith("@" + ERASED_EMAIL_DOMAIN)


@dataclass(frozen=True)
class KeepForLegalDuty:
    """Keep the row for a legal duty until a date, reduced to *keep_fields*."""

    duty: str
    until: Callable[[Any], Any]
    keep_fields: tuple[str, ...]
    reduce: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"kept for {self.duty}, reduced to {', '.join(self.keep_fields)}"


Erasure = Delete | Anonymise | KeepForLegalDuty


# --- Retention: when rows go without anyone asking ---------------------------------------------
@dataclass(frozen=True)
class Retention:
    """Rows whose *clock* is older than *period()* are deleted (or anonymised)."""

    clock: str
    period: Callable[[], timedelta]
    action: str = "delete"  # or "anonymise"
    anonymise: Mapping[str, Any] = field(default_factory=dict)
    filter: models.Q | None = None
    description: str = ""
    after: str = ""  # how people would name the clock's event ("the request", "sign-up")
    # Names one of several rules on the same model (e.g. results: after delivery, and
    # after the last edit of an order never delivered); part of the rule's key.
    name: str = ""

    def __post_init__(self) -> None:
        if self.action not in {"delete", "anonymise"}:
            raise ValueError("Retention.action must be 'delete' or 'anonymise'")
        if self.action == "anonymise" and not self.anonymise:
            raise ValueError("An anonymising retention rule needs the values to write")

    def describe(self) -> str:
        days = self.period().total_seconds() / 86400
        span = f"{days:g} days" if days >= 1 else f"{days * 24:g} hours"
        verb = "deleted" if self.action == "delete" else "anonymised"
        cond = f" ({self.description})" if self.description else ""
        event = self.after or self.clock.replace("_", " ")
        if days == 0:
            return f"{verb} at {event}{cond}"
        return f"{verb} {span} after {event}{cond}"


@dataclass(frozen=True)
class PersonalData:
    """One model's declaration."""

    model: type[models.Model]
    purpose: str
    fields: Mapping[str, str]  # field name -> Category value
    erasure: Erasure
    # ORM path from a row to its user ("" when the row *is* the user), or None.
    subject: str | None = None
    # ORM path to the email of a subject without an account (guests), or None.
    subject_email: str | None = None
    # For rows with no path to their subject: how the subject's rows are found instead.
    subject_note: str = ""
    export: tuple[str, ...] | None = None  # default: every declared field
    # One rule, or several when different rows of the model age on different clocks.
    retention: Retention | tuple[Retention, ...] | None = None
    file_fields: tuple[str, ...] = ()
    description: str = ""

    @property
    def label(self) -> str:
        return self.model._meta.label

    @property
    def export_fields(self) -> tuple[str, ...]:
        return self.export if self.export is not None else tuple(self.fields)

    @property
    def rules(self) -> tuple[Retention, ...]:
        if self.retention is None:
            return ()
        return self.retention if isinstance(self.retention, tuple) else (self.retention,)

    def rule_key(self, rule: Retention) -> str:
        return f"{self.label}:{rule.name}" if rule.name else self.label

    def retention_describe(self) -> str:
        return "; ".join(rule.describe() for rule in self.rules)

    @property
    def categories(self) -> list[str]:
        return sorted(set(self.fields.values()))

    def subject_filter(self, user: Any) -> models.Q:
        if self.subject is None:
            raise ValueError(f"{self.label} has no user subject")
        return models.Q(pk=user.pk) if self.subject == "" else models.Q(**{self.subject: user})


class Registry:
    def __init__(self) -> None:
        self._entries: dict[str, PersonalData] = {}
        self._exempt: dict[str, str] = {}

    def register(self, entry: PersonalData) -> PersonalData:
        if entry.label in self._entries:
            raise ValueError(f"{entry.label} is declared twice")
        unknown = set(entry.fields.values()) - set(Category.values)
        if unknown:
            raise ValueError(f"{entry.label}: unknown categories {sorted(unknown)}")
        if entry.subject is None and entry.subject_email is None and not entry.subject_note:
            raise ValueError(f"{entry.label}: declare subject, subject_email or subject_note")
        names = [rule.name for rule in entry.rules]
        if len(names) > 1 and (len(set(names)) != len(names) or not all(names)):
            raise ValueError(f"{entry.label}: several retention rules need distinct names")
        self._entries[entry.label] = entry
        return entry

    def exempt(self, label: str, reason: str) -> None:
        """A model linked to users that holds no personal data of its own, with the reason."""
        self._exempt[label] = reason

    def __iter__(self) -> Iterator[PersonalData]:
        return iter(sorted(self._entries.values(), key=lambda e: e.label))

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, label: str) -> PersonalData | None:
        return self._entries.get(label)

    def is_declared(self, label: str) -> bool:
        return label in self._entries or label in self._exempt

    def exemptions(self) -> dict[str, str]:
        return dict(self._exempt)

    def with_retention(self) -> list[PersonalData]:
        return [e for e in self if e.retention is not None]

    def retention_rules(self) -> list[tuple[PersonalData, Retention]]:
        return [(entry, rule) for entry in self for rule in entry.rules]


registry = Registry()
