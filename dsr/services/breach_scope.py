"""Who a breach affects: scope rules built on the registry and the data (BRE-1).

A scope is a JSON document ``{"rules": [...]}`` stored on the incident; the affected are
the union of its rules. Each rule yields account holders (user ids) and, where guests
are concerned, bare email addresses:

- ``{"kind": "everyone"}``: every active account;
- ``{"kind": "categories", "categories": ["image", ...]}``: holders of data of those
  categories, found through the registry's declarations (never a hand-written list);
- ``{"kind": "uploads" | "orders" | "activity", "start": iso, "end": iso}``: customers
  (and guests, for uploads and orders) who uploaded images, placed orders, or appear in
  the request log within the window;
- ``{"kind": "list", "emails": [...], "user_ids": [...]}``: an uploaded list; an address
  with an account counts as that account, any other as a guest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.dateparse import parse_datetime

from accounts.models import RequestLog, User
from dsr.registry import registry
from images.models import Photo
from orders.models import Order

RULE_KINDS = ("everyone", "categories", "uploads", "orders", "activity", "list")


class ScopeError(ValueError):
    """A scope rule that cannot be applied; the message is shown to staff."""


@dataclass(frozen=True)
class ScopePreview:
    users: int
    guests: int
    sample: list[str]

    @property
    def total(self) -> int:
        return self.users + self.guests


def _window(rule: dict[str, Any]) -> tuple[datetime, datetime]:
    start, end = (
        parse_datetime(str(rule.get("start", ""))),
        parse_datetime(str(rule.get("end", ""))),
    )
    if start is None or end is None or start.tzinfo is None or end.tzinfo is None:
        raise ScopeError("A time window needs a start and an end with a time zone.")
    if end <= start:
        raise ScopeError("The window's end must be after its start.")
    return start, end


def _category_users(categories: list[str]) -> Q:
    """Users holding any field of *categories* in any registry entry that links to them."""
    wanted = set(categories)
    cond = Q(pk__in=[])
    for entry in registry:
        fields = [name for name, cat in entry.fields.items() if cat in wanted]
        if not fields or entry.subject is None:
            continue
        if entry.subject == "":
            for name in fields:
                cond |= ~Q(**{f"{name}__isnull": True}) & ~Q(**{name: ""})
            continue
        rows = entry.model._default_manager.filter(**{entry.subject: OuterRef("pk")})
        cond |= Q(Exists(rows))
    return cond


def _rule_users(rule: dict[str, Any]) -> Q:
    kind = rule.get("kind")
    if kind == "everyone":
        # Not Q(): OR-ing an empty Q into Q(pk__in=[]) drops it, and "everyone" would
        # find nobody.
        return Q(pk__isnull=False)
    if kind == "categories":
        categories = [str(c) for c in rule.get("categories") or []]
        if not categories:
            raise ScopeError("Choose at least one data category.")
        return _category_users(categories)
    if kind == "uploads":
        start, end = _window(rule)
        photos = Photo.objects.filter(
            order__customer=OuterRef("pk"), created_at__gte=start, created_at__lt=end
        )
        return Q(Exists(photos))
    if kind == "orders":
        start, end = _window(rule)
        orders = Order.objects.filter(
            customer=OuterRef("pk"), created_at__gte=start, created_at__lt=end
        )
        return Q(Exists(orders))
    if kind == "activity":
        start, end = _window(rule)
        lines = RequestLog.objects.filter(user=OuterRef("pk"), time__gte=start, time__lt=end)
        return Q(Exists(lines))
    if kind == "list":
        emails = _emails(rule)
        ids = [int(i) for i in rule.get("user_ids") or [] if str(i).isdigit()]
        return Q(pk__in=ids) | Q(email__in=emails)
    raise ScopeError(f"Unknown scope rule: {kind!r}.")


def _emails(rule: dict[str, Any]) -> list[str]:
    return sorted({str(e).strip().lower() for e in rule.get("emails") or [] if "@" in str(e)})


def _rule_guest_emails(rule: dict[str, Any]) -> QuerySet[Any] | list[str]:
    kind = rule.get("kind")
    if kind in ("uploads", "orders"):
        start, end = _window(rule)
        orders = Order.objects.filter(customer__isnull=True).exclude(guest_email="")
        if kind == "uploads":
            orders = orders.filter(photos__created_at__gte=start, photos__created_at__lt=end)
        else:
            orders = orders.filter(created_at__gte=start, created_at__lt=end)
        return orders.values_list("guest_email", flat=True).distinct()
    if kind == "list":
        return _emails(rule)
    return []


def _rules(scope: dict[str, Any]) -> list[dict[str, Any]]:
    rules = scope.get("rules") if isinstance(scope, dict) else None
    if not rules or not isinstance(rules, list):
        raise ScopeError("The scope is empty: add at least one rule.")
    return [r for r in rules if isinstance(r, dict)]


def breach_scope_users(*, scope: dict[str, Any]) -> QuerySet[User]:
    """Active account holders affected (a query, so the freeze is one INSERT ... SELECT)."""
    cond = Q(pk__in=[])
    for rule in _rules(scope):
        cond |= _rule_users(rule)
    return User.objects.filter(cond, is_active=True)


def breach_scope_guest_emails(*, scope: dict[str, Any]) -> list[str]:
    """Addresses without an active account (guests, listed non-users), lower-cased."""
    found: set[str] = set()
    for rule in _rules(scope):
        found.update(e.strip().lower() for e in _rule_guest_emails(rule) if e)
    if not found:
        return []
    holders = set(
        User.objects.filter(is_active=True, email__in=found).values_list("email", flat=True)
    )
    return sorted(found - {h.lower() for h in holders})


def breach_scope_preview(*, scope: dict[str, Any], sample_size: int = 10) -> ScopePreview:
    users = breach_scope_users(scope=scope)
    guests = breach_scope_guest_emails(scope=scope)
    sample = list(users.order_by("pk").values_list("email", flat=True)[:sample_size])
    sample += guests[: max(0, sample_size - len(sample))]
    return ScopePreview(users=users.count(), guests=len(guests), sample=sample)
