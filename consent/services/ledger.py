"""Writing the consent ledger (CON-3): the only way any consent is given or withdrawn."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from common.http import RequestMeta
from consent.models import (
    ConsentEvent,
    ConsentMethod,
    ConsentPurpose,
    ConsentState,
    ConsentText,
    PolicyVersion,
    PurposeKind,
    subject_key,
)


class ConsentRefused(ValueError):
    """A consent that cannot be recorded as asked (unknown purpose, missing target)."""


def consent_text_get(*, text: str) -> ConsentText:
    """The stored copy of a wording, one row per digest."""
    obj, _ = ConsentText.objects.get_or_create(
        digest=ConsentText.digest_of(text), defaults={"text": text}
    )
    return obj


def consent_purpose_get(*, key: str, for_grant: bool) -> ConsentPurpose:
    purpose = ConsentPurpose.objects.filter(key=key).first()
    if purpose is None or (for_grant and not purpose.active):
        raise ConsentRefused(f"Unknown purpose: {key!r}.")
    return purpose


def _current_policy() -> PolicyVersion | None:
    from consent.selectors import policy_current

    return policy_current()


@transaction.atomic
def consent_record(
    *,
    purpose: str,
    granted: bool,
    method: ConsentMethod,
    actor: Any = None,
    user: Any = None,
    email: str = "",
    visitor: str = "",
    target: str = "",
    wording: str | None = None,
    meta: RequestMeta | None = None,
    note: str = "",
    only_if_changed: bool = False,
) -> ConsentEvent | None:
    """Append one consent event and make it the subject's current answer.

    *wording* is the exact text the person saw (default: the purpose's wording); its
    digest and the policy version in force go into the evidence. *actor* is staff acting
    on the subject's written request (method STAFF), else the subject or None (a signal,
    a link). With *only_if_changed*, nothing is written when the answer already stands
    (browser signals repeat on every request).
    """
    purpose_obj = consent_purpose_get(key=purpose, for_grant=granted)
    if purpose_obj.per_object and not target:
        raise ConsentRefused(f"{purpose_obj.name}: consent is given per item; name the item.")
    if not purpose_obj.per_object and target:
        raise ConsentRefused(f"{purpose_obj.name}: consent is given once, not per item.")
    if method == ConsentMethod.STAFF and not note:
        raise ConsentRefused("Say which written request this records (the note).")
    user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    email = (email or "").strip().lower()
    if purpose_obj.kind == PurposeKind.COOKIE:
        # Cookies are chosen per browser: the subject is the browser, the user is evidence.
        if not visitor:
            raise ConsentRefused("A cookie choice belongs to a browser: the visitor id is missing.")
        key = subject_key(visitor=visitor)
    else:
        key = subject_key(user_id=user_id, email=email, visitor=visitor)
    state = (
        ConsentState.objects.select_for_update()
        .filter(subject=key, purpose=purpose_obj, target=target)
        .first()
    )
    if only_if_changed and state is not None and state.granted == granted:
        return None
    meta = meta or RequestMeta()
    event = ConsentEvent.objects.create(
        subject=key,
        user_id=user_id,
        email=email,
        visitor=visitor,
        purpose=purpose_obj,
        target=target,
        granted=granted,
        policy_version=_current_policy(),
        wording=consent_text_get(text=wording if wording is not None else purpose_obj.wording),
        method=method,
        ip_address=meta.ip_address,
        user_agent=meta.user_agent,
        actor=actor if method == ConsentMethod.STAFF else None,
        note=note[:300],
    )
    # update_or_create re-reads after a unique-constraint race, so two first answers at
    # once still leave one state row: the later event's.
    ConsentState.objects.update_or_create(
        subject=key,
        purpose=purpose_obj,
        target=target,
        defaults={
            "user_id": user_id,
            "email": email,
            "granted": granted,
            "event": event,
            "updated_at": timezone.now(),
        },
    )
    return event
