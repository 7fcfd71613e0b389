"""A registry-wide scan for what remains of a subject (DSR-3): zero after an erasure.

Independent of the erasure's own report: it asks the data, not the steps. Used by the
tests and the erasure benchmark; cheap enough to run on one subject in production.
"""

from __future__ import annotations

from collections import Counter

from django.core.files.storage import default_storage

from accounts.models import User
from dsr.models import Ticket
from dsr.registry import is_erased_email, registry
from dsr.services.erasure_steps import (
    ORDER_PREFIX,
    QUARANTINE_PREFIX,
    Subject,
    file_names,
    leftover_rows,
    one_listing_is_cheaper,
    subject_orders,
    user_session_keys,
)
from dsr.services.erasure_storage import (
    storage_list_children,
    storage_list_prefixes,
    storage_name_exists,
    top_prefix,
)


def leftovers(*, user_id: int | None, email: str) -> dict[str, int]:
    user = User.objects.filter(pk=user_id).first() if user_id is not None else None
    email = (email or "").strip().lower()
    emails = (email,) if email and not is_erased_email(email) else ()
    # A stand-in ticket: no row is excluded as "the erasure's own".
    subject = Subject(ticket=Ticket(), user=user, emails=emails)
    found: dict[str, int] = {}
    for entry in registry:
        if entry.label == "sessions.Session":
            continue
        n = leftover_rows(entry, subject, own_ticket=True)
        if n:
            found[entry.label] = n
    if user is not None:
        sessions = len(user_session_keys(user_id=user.pk))
        if sessions:
            found["sessions.Session"] = sessions
    found.update(_storage_leftovers(subject))
    return found


def _storage_leftovers(subject: Subject) -> dict[str, int]:
    tokens = set(subject_orders(subject).values_list("storage_token", flat=True))
    counts: Counter[str] = Counter()
    for part in (ORDER_PREFIX, QUARANTINE_PREFIX):
        if part == QUARANTINE_PREFIX or one_listing_is_cheaper(len(tokens)):
            keys = storage_list_children(default_storage, part, tokens)
        else:
            keys = storage_list_prefixes(default_storage, [f"{part}{t}/" for t in tokens])
        counts["storage:" + part] += len(keys)
    for storage, names in file_names(subject, outside=set()).items():
        for name in names:
            if storage_name_exists(storage, name):
                counts["storage:" + top_prefix(name)] += 1
    return {k: v for k, v in counts.items() if v}
