"""The steps of an erasure (DSR-3, ORD-4, ACC-5), each idempotent and counted.

The plan of one erasure, in order:

1. ``sessions``: the account can no longer log in (inactive, unusable password, which
   also changes the session auth hash so any session anywhere dies) and its stored
   sessions are deleted.
2. ``queued_work``: marketing and policy emails not sent yet are dropped, other open
   requests of the subject are closed, and (a child's account) orders are cancelled.
3. ``suppression``: the address goes on the marketing suppression list as a keyed hash.
4. ``files``: every stored file of the subject, every version (an order's files by the
   order's random prefix, in batches; the few others one by one). Files go before rows,
   so no file is ever left without the row that tells us it exists.
5. one step per registry entry with rows of the subject, dependants before what they
   point at: Delete, Anonymise, or KeepForLegalDuty (reduced; kept_until recorded).
6. ``account``: the account row itself, anonymised as declared (a placeholder address).
7. ``receipt``: rows that arrived late are swept, the receipt is written on the ticket
   and the ticket is fulfilled.
8. ``tell``: the subject is emailed at the address captured when the erasure started
   (the account's own address is gone by now), and only then is the ticket's own copy
   of it erased, with the audit rows written about the subject during the erasure.

Nothing in a step's detail or in the receipt is personal data: counts, prefixes, dates.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from dsr.models import OPEN_STATUSES, ErasureStep, RejectionReason, Ticket, TicketStatus
from dsr.registry import (
    Anonymise,
    Delete,
    KeepForLegalDuty,
    PersonalData,
    is_erased_email,
    registry,
)
from dsr.services.erasure_storage import (
    storage_delete_children,
    storage_delete_names,
    storage_delete_prefixes,
)

logger = logging.getLogger(__name__)

SESSIONS = "sessions"
QUEUED = "queued_work"
SUPPRESSION = "suppression"
FILES = "files"
ACCOUNT = "account"
RECEIPT = "receipt"
TELL = "tell"

USER_LABEL = "accounts.User"
# Sessions have no path to their user (the id is inside the signed data): step 1.
HANDLED_APART = frozenset({USER_LABEL, "sessions.Session"})
CHUNK = 5000
# Where an order's files live (images/services: uploads, cleaned originals, results).
ORDER_PREFIX = "o/"
QUARANTINE_PREFIX = "q/"
# What "an order in progress" means for an erasure: work or money is under way.
ORDERS_IN_PROGRESS = ("submitted", "paid", "in_progress", "ready_for_review", "revision_requested")


@dataclass(frozen=True)
class Subject:
    """Whose data: an account and/or the addresses it is known by (a guest: addresses only)."""

    ticket: Ticket
    user: User | None
    emails: tuple[str, ...]

    @property
    def label(self) -> str:
        return "account" if self.user is not None else "email address only"


def erasure_subject(ticket: Ticket) -> Subject:
    emails = {(ticket.email or "").strip().lower()}
    user = ticket.user
    if user is not None and not is_erased_email(user.email):
        emails.add(user.email.strip().lower())
    return Subject(ticket, user, tuple(sorted(e for e in emails if e and not is_erased_email(e))))


def add_detail(step: ErasureStep, new: dict[str, Any]) -> None:
    """Merge a run's figures into the step's: a re-run adds what it did, never resets."""
    detail = dict(step.detail or {})
    for key, value in new.items():
        old = detail.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and isinstance(old, int):
            detail[key] = old + value
        elif isinstance(value, dict) and isinstance(old, dict):
            merged = Counter(old)
            merged.update(value)
            detail[key] = dict(merged)
        elif isinstance(value, list) and isinstance(old, list):
            detail[key] = old + [v for v in value if v not in old]
        else:
            detail[key] = value
    step.detail = detail


# --- Finding the subject's rows ---------------------------------------------------------------
def entry_rows(entry: PersonalData, subject: Subject, *, own_ticket: bool = False) -> QuerySet[Any]:
    """The subject's rows of *entry*: by the path to the account, or by an address."""
    cond = Q()
    if entry.subject is not None and subject.user is not None:
        cond |= entry.subject_filter(subject.user)
    if entry.subject_email:
        for email in subject.emails:
            cond |= Q(**{f"{entry.subject_email}__iexact": email})
    cond |= _also(entry, subject)
    manager = entry.model._default_manager
    if not cond:
        return manager.none()
    qs = manager.filter(cond)
    if not own_ticket and subject.ticket.pk is not None:
        # The erasure's own ticket keeps the address until the subject is told (step "tell").
        if entry.model is Ticket:
            qs = qs.exclude(pk=subject.ticket.pk)
        elif entry.label == "dsr.TicketEvent":
            qs = qs.exclude(ticket=subject.ticket)
    return qs


def _also(entry: PersonalData, subject: Subject) -> Q:
    """Rows about the subject that the declared path does not reach."""
    if entry.label == "admin.LogEntry" and subject.user is not None:
        from django.contrib.contenttypes.models import ContentType

        # Staff edits of the account: object_repr is the account's address.
        return Q(
            content_type=ContentType.objects.get_for_model(User),
            object_id=str(subject.user.pk),
        )
    return Q()


def subject_orders(subject: Subject) -> QuerySet[Any]:
    from orders.models import Order

    cond = Q()
    if subject.user is not None:
        cond |= Q(customer=subject.user)
    for email in subject.emails:
        cond |= Q(guest_email__iexact=email)
    return Order.objects.filter(cond) if cond else Order.objects.none()


def orders_in_progress(subject: Subject) -> list[str]:
    return list(
        subject_orders(subject)
        .filter(status__in=ORDERS_IN_PROGRESS)
        .order_by("created_at")
        .values_list("reference", flat=True)
    )


def entries_in_order() -> list[PersonalData]:
    """Registry entries, every model before the models it points at (Result before Photo,
    Invoice and Payment before Order), so no delete cascades into a row not handled yet."""
    entries = {e.model: e for e in registry if e.label not in HANDLED_APART}
    before: dict[Any, set[Any]] = {m: set() for m in entries}  # target -> models pointing at it
    for model in entries:
        for field in model._meta.concrete_fields:
            target = field.related_model if field.many_to_one or field.one_to_one else None
            if target in entries and target is not model:
                before[target].add(model)
    done: list[PersonalData] = []
    placed: set[Any] = set()
    while len(done) < len(entries):
        ready = sorted(
            (m for m in entries if m not in placed and before[m] <= placed),
            key=lambda m: m._meta.label,
        )
        if not ready:  # a cycle: fall back to label order for the rest
            ready = sorted((m for m in entries if m not in placed), key=lambda m: m._meta.label)
        for model in ready:
            placed.add(model)
            done.append(entries[model])
    return done


def plan(subject: Subject) -> list[str]:
    keys = [SESSIONS] if subject.user is not None else []
    keys += [QUEUED, SUPPRESSION, FILES]
    keys += [e.label for e in entries_in_order() if entry_rows(e, subject).exists()]
    if subject.user is not None:
        keys.append(ACCOUNT)
    return [*keys, RECEIPT, TELL]


# --- 1. Sessions ------------------------------------------------------------------------------
def step_sessions(step: ErasureStep, subject: Subject) -> None:
    user = subject.user
    assert user is not None
    # An unusable password changes the session auth hash: every session of the account,
    # wherever stored, fails its check on its next request. Inactive: no login either.
    User.objects.filter(pk=user.pk).update(
        is_active=False, password=UNUSABLE_PASSWORD_PREFIX, updated_at=timezone.now()
    )
    user.is_active, user.password = False, UNUSABLE_PASSWORD_PREFIX
    ended = sessions_end(user_id=user.pk)
    step.rows_deleted += ended
    add_detail(step, {"sessions_ended": ended, "login": "disabled"})


def _session_store() -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore


def user_session_keys(*, user_id: int) -> list[str]:
    """Keys of the stored sessions of *user_id*, logged in or half-way through 2FA.

    The user id is inside the signed session data, so only live sessions are decoded (a
    page at a time); sessions in cookies or a plain cache cannot be listed and die by
    the auth-hash change instead.
    """
    from django.contrib.sessions.backends.db import SessionStore as DBStore

    store = _session_store()
    if not issubclass(store, DBStore):
        return []
    decoder = store()
    wanted = str(user_id)
    keys = []
    live = store.get_model_class().objects.filter(expire_date__gt=timezone.now())
    for key, data in live.values_list("session_key", "session_data").iterator(chunk_size=2000):
        decoded = decoder.decode(data)
        if wanted in (str(decoded.get("_auth_user_id")), str(decoded.get("pre_2fa_user_id"))):
            keys.append(key)
    return keys


def sessions_end(*, user_id: int) -> int:
    store = _session_store()
    keys = user_session_keys(user_id=user_id)
    for key in keys:
        store(session_key=key).delete()  # the row and, for cached_db, the cached copy
    return len(keys)


# --- 2. Queued work ---------------------------------------------------------------------------
def step_queued_work(step: ErasureStep, subject: Subject) -> None:
    from common.models import FanoutStatus
    from consent.models import CampaignSend, PolicyNoticeSend

    detail: dict[str, Any] = {}
    cond = Q(subscriber__user=subject.user) if subject.user is not None else Q()
    for email in subject.emails:
        cond |= Q(subscriber__email__iexact=email)
    if cond:
        n, _ = CampaignSend.objects.filter(cond, status=FanoutStatus.PENDING).delete()
        detail["campaign_emails_dropped"] = n
    if subject.user is not None:
        n, _ = PolicyNoticeSend.objects.filter(
            user=subject.user, status=FanoutStatus.PENDING
        ).delete()
        detail["policy_notices_dropped"] = n
    detail["requests_closed"] = _close_other_requests(subject)
    if subject.ticket.child:
        detail.update(_cancel_orders(subject))
    step.rows_deleted += detail.get("campaign_emails_dropped", 0) + detail.get(
        "policy_notices_dropped", 0
    )
    add_detail(step, detail)


def _close_other_requests(subject: Subject) -> int:
    """An export or a correction of data about to be erased is moot: closed, not answered
    separately (the subject hears about the erasure)."""
    from dsr.services.tickets import ticket_transition

    cond = Q(user=subject.user) if subject.user is not None else Q()
    for email in subject.emails:
        cond |= Q(email__iexact=email)
    if not cond:
        return 0
    others = Ticket.objects.filter(cond, status__in=OPEN_STATUSES).exclude(pk=subject.ticket.pk)
    text = f"Superseded by the erasure {subject.ticket.reference}: the data it concerned is erased."
    closed = 0
    for other in others:
        ticket_transition(
            ticket=other,
            to=TicketStatus.REJECTED,
            actor=None,
            note=text,
            rejection_reason=RejectionReason.OTHER,
            rejection_text=text,
        )
        closed += 1
    return closed


def _cancel_orders(subject: Subject) -> dict[str, Any]:
    """ACC-5: a child's orders are cancelled where the order machine allows it; work
    already started cannot be cancelled, and is erased with the rest."""
    from orders.models import ActorRole, OrderStatus
    from orders.services.status import order_transition, transition_allowed

    cancelled, started = [], []
    for order in subject_orders(subject).filter(status__in=[*ORDERS_IN_PROGRESS, "draft"]):
        if transition_allowed(order, OrderStatus.CANCELLED):
            order_transition(
                actor=subject.ticket.entered_by,
                order=order,
                to=OrderStatus.CANCELLED,
                actor_role=ActorRole.STAFF,
            )
            cancelled.append(order.reference)
        else:
            started.append(order.reference)
    return {"orders_cancelled": cancelled, "orders_not_cancellable": started}


# --- 3. Suppression ---------------------------------------------------------------------------
def step_suppression(step: ErasureStep, subject: Subject) -> None:
    from consent.services.suppression import suppression_add

    for email in subject.emails:
        suppression_add(email=email, source="erasure")
    add_detail(step, {"addresses_suppressed": len(subject.emails), "stored_as": "keyed hash"})


# --- 4. Files ---------------------------------------------------------------------------------
def _order_tokens(subject: Subject) -> set[str]:
    return set(subject_orders(subject).values_list("storage_token", flat=True))


def _under_orders(name: str, tokens: set[str]) -> bool:
    parts = name.split("/")
    return (
        len(parts) > 2
        and parts[0] + "/" in (ORDER_PREFIX, QUARANTINE_PREFIX)
        and (parts[1] in tokens)
    )


def file_names(
    subject: Subject, *, outside: set[str], only: PersonalData | None = None
) -> dict[Any, list[str]]:
    """Stored names held by the subject's rows, per storage, except under the orders' prefixes."""
    names: dict[Any, list[str]] = {}
    for entry in [only] if only is not None else registry:
        if not entry.file_fields:
            continue
        rows = entry_rows(entry, subject, own_ticket=True)
        for field_name in entry.file_fields:
            storage = entry.model._meta.get_field(field_name).storage  # type: ignore[union-attr]
            found = rows.exclude(**{field_name: ""}).values_list(field_name, flat=True)
            names.setdefault(storage, []).extend(
                n for n in found if n and not _under_orders(n, outside)
            )
    return names


def one_listing_is_cheaper(orders: int) -> bool:
    """Fewer S3 requests: one listing of all orders' files, or one per order?

    Every listing is a round trip of up to 1,000 entries. For a customer with hundreds
    of orders on a bucket of a few thousand files, listing "o/" once (and keeping only
    their orders' keys) takes a handful of requests instead of hundreds; on a large
    bucket, one listing per order. The files under "o/" are about the Photo and Result
    rows (twice that, counting old versions).
    """
    if orders <= 20:
        return False
    from images.models import Photo, Result

    files = Photo.objects.count() + Result.objects.count()
    return 1 + 2 * files // 1000 < orders


def delete_order_files(tokens: set[str]) -> tuple[Counter[str], int]:
    """Every object (every version) under the orders' own prefixes, uploads included."""
    if one_listing_is_cheaper(len(tokens)):
        counts, versions = storage_delete_children(default_storage, ORDER_PREFIX, tokens)
    else:
        counts, versions = storage_delete_prefixes(
            default_storage, [f"{ORDER_PREFIX}{t}/" for t in sorted(tokens)]
        )
    # The upload quarantine is short-lived and shared by all orders: one listing.
    quarantined, more = storage_delete_children(default_storage, QUARANTINE_PREFIX, tokens)
    counts.update(quarantined)
    return counts, versions + more


def step_files(step: ErasureStep, subject: Subject) -> None:
    tokens = _order_tokens(subject)
    counts, versions = delete_order_files(tokens)
    for storage, names in file_names(subject, outside=tokens).items():
        counts.update(storage_delete_names(storage, names))
    step.files_deleted += sum(counts.values())
    add_detail(step, {"files": dict(counts), "versions": versions, "orders": len(tokens)})


def late_files(subject: Subject) -> Counter[str]:
    """Files written after the files step by work that was still running (open orders)."""
    from orders.models import OPEN_STATUSES as ORDER_OPEN

    open_orders = subject_orders(subject).filter(status__in=ORDER_OPEN)
    counts, _ = delete_order_files(set(open_orders.values_list("storage_token", flat=True)))
    return counts


# --- 5. Registry entries ----------------------------------------------------------------------
def _save_counts(step: ErasureStep) -> None:
    if step.pk is None:  # a scratch step of the late-row sweep: counted by the caller
        return
    step.save(
        update_fields=[
            "rows_deleted",
            "rows_anonymised",
            "rows_kept",
            "files_deleted",
            "detail",
        ]
    )


def step_entry(step: ErasureStep, subject: Subject, entry: PersonalData) -> None:
    qs = entry_rows(entry, subject)
    if isinstance(entry.erasure, Delete):
        _delete_rows(step, entry, qs, subject)
    elif isinstance(entry.erasure, Anonymise):
        _anonymise_rows(step, entry, entry.erasure, qs)
    elif isinstance(entry.erasure, KeepForLegalDuty):
        _keep_rows(step, entry, entry.erasure, qs)


def _delete_rows(
    step: ErasureStep, entry: PersonalData, qs: QuerySet[Any], subject: Subject
) -> None:
    if entry.file_fields:
        # Normally gone in the files step; again here for a file that appeared since.
        tokens = _order_tokens(subject)
        for storage, names in file_names(subject, outside=tokens, only=entry).items():
            step.files_deleted += sum(storage_delete_names(storage, names).values())
    while True:
        ids = list(qs.order_by("pk").values_list("pk", flat=True)[:CHUNK])
        if not ids:
            return
        with transaction.atomic():
            _, per_model = entry.model._default_manager.filter(pk__in=ids).delete()
            step.rows_deleted += per_model.get(entry.label, 0)
            _save_counts(step)


def _at_values(values: dict[str, Any]) -> Q:
    cond = Q()
    for name, value in values.items():
        cond &= Q(**{f"{name}__isnull": True}) if value is None else Q(**{name: value})
    return cond


def _anonymise_rows(
    step: ErasureStep, entry: PersonalData, rule: Anonymise, qs: QuerySet[Any]
) -> None:
    if rule.per_row:
        with transaction.atomic():
            for row in qs.select_for_update():
                values = rule.row_values(row)
                if any(getattr(row, k) != v for k, v in values.items()):
                    entry.model._default_manager.filter(pk=row.pk).update(**values)
                    step.rows_anonymised += 1
            _save_counts(step)
        return
    # Rows already anonymised are skipped: a re-run counts (and rewrites) nothing twice.
    todo = qs.exclude(_at_values(rule.constant))
    last = None
    while True:
        page = todo if last is None else todo.filter(pk__gt=last)
        ids = list(page.order_by("pk").values_list("pk", flat=True)[:CHUNK])
        if not ids:
            return
        last = ids[-1]
        with transaction.atomic():
            step.rows_anonymised += entry.model._default_manager.filter(pk__in=ids).update(
                **rule.constant
            )
            _save_counts(step)


def reduce_values(entry: PersonalData, duty: KeepForLegalDuty) -> dict[str, Any]:
    """The declared reduction, plus a blank for any declared field the duty does not keep."""
    values = dict(duty.reduce)
    for name in entry.fields:
        if name in duty.keep_fields or name in values:
            continue
        field = entry.model._meta.get_field(name)
        values[name] = None if getattr(field, "null", False) else ""
    return values


def _keep_rows(
    step: ErasureStep, entry: PersonalData, duty: KeepForLegalDuty, qs: QuerySet[Any]
) -> None:
    values = reduce_values(entry, duty)
    with transaction.atomic():
        kept, earliest, latest = 0, None, None
        for row in qs.order_by("pk").iterator(chunk_size=2000):
            until = duty.until(row)
            if isinstance(until, datetime):
                until = timezone.localdate(until)
            earliest = until if earliest is None or until < earliest else earliest
            latest = until if latest is None or until > latest else latest
            kept += 1
        reduced = qs.exclude(_at_values(values)).update(**values) if values else 0
        step.rows_kept = kept
        step.rows_anonymised += reduced
        step.detail = {
            "duty": duty.duty,
            "fields_kept": list(duty.keep_fields),
            "kept_until": {
                "earliest": earliest.isoformat() if earliest else None,
                "latest": latest.isoformat() if latest else None,
            },
        }
        _save_counts(step)


def leftover_rows(entry: PersonalData, subject: Subject, *, own_ticket: bool = True) -> int:
    """Rows of the subject still holding what the declaration removes (0 when erased)."""
    qs = entry_rows(entry, subject, own_ticket=own_ticket)
    rule = entry.erasure
    if isinstance(rule, Delete):
        return qs.count()
    if isinstance(rule, KeepForLegalDuty):
        values = reduce_values(entry, rule)
        return qs.exclude(_at_values(values)).count() if values else 0
    if rule.per_row:
        return sum(
            1 for row in qs if any(getattr(row, k) != v for k, v in rule.row_values(row).items())
        )
    return qs.exclude(_at_values(rule.constant)).count()


# --- 6. The account ---------------------------------------------------------------------------
def step_account(step: ErasureStep, subject: Subject) -> None:
    entry = registry.get(USER_LABEL)
    assert entry is not None and isinstance(entry.erasure, Anonymise)
    user = subject.user
    assert user is not None
    for storage, names in file_names(subject, outside=set(), only=entry).items():
        # Normally gone in the files step already.
        step.files_deleted += sum(storage_delete_names(storage, names).values())
    _anonymise_rows(step, entry, entry.erasure, User.objects.filter(pk=user.pk))
    user.refresh_from_db()


# --- 7. Late rows, before the receipt ---------------------------------------------------------
def sweep_late_rows(subject: Subject) -> dict[str, int]:
    """Rows that arrived after their step (a request-log line still in its buffer, a
    notification of a cancelled order): handled as declared, and reported."""
    late: dict[str, int] = {}
    for entry in entries_in_order():
        if leftover_rows(entry, subject, own_ticket=False) == 0:
            continue
        scratch = ErasureStep(ticket=subject.ticket, key=entry.label)
        step_entry(scratch, subject, entry)
        late[entry.label] = scratch.rows_deleted + scratch.rows_anonymised
    return late


def model_name_plural(label: str) -> str:
    entry = registry.get(label)
    return str(entry.model._meta.verbose_name_plural) if entry else label
