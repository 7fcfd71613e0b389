"""A person's own consents, given or withdrawn from "My privacy choices"."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from common.http import RequestMeta
from consent.models import ConsentMethod, ConsentPurpose, PurposeKind
from consent.services.ledger import ConsentRefused, consent_record


def consent_toggle(
    *,
    user: Any,
    purpose: ConsentPurpose,
    granted: bool,
    method: ConsentMethod,
    meta: RequestMeta,
) -> None:
    """Give or withdraw one per-person consent; *user* is the subject and the actor.

    Withdrawing any marketing purpose is an opt-out from all marketing (CON-2), the
    same path as an unsubscribe link. The newsletter needs a confirmed address: an
    account's verified email is one, so no second confirmation email is sent.
    """
    from consent.services import marketing

    if purpose.is_marketing and not granted:
        marketing.marketing_optout(user=user, email=user.email, method=method, meta=meta)
        return
    if purpose.key == ConsentPurpose.MARKETING_EMAIL:
        if not user.email_verified_at:
            raise ConsentRefused("Please confirm your email address first.")
        marketing.marketing_subscribe_user(user=user, meta=meta, method=method)
        return
    consent_record(purpose=purpose.key, granted=granted, method=method, user=user, meta=meta)


@transaction.atomic
def consent_record_for_subject(
    *,
    actor: Any,
    email: str,
    purpose: ConsentPurpose,
    granted: bool,
    note: str,
    target: str = "",
    actor_ip: str | None = None,
) -> None:
    """Staff record a consent (or its withdrawal) from the subject's written request.

    The subject is the account with that email, else the bare address. *note* names the
    letter or message; the ledger row carries the staff member, and an audit row says so.
    """
    from accounts.models import AuditAction, User, normalize_email
    from accounts.services import audit_log_write

    email = normalize_email(email)
    if not email:
        raise ConsentRefused("Give the subject's email address.")
    if not note.strip():
        raise ConsentRefused("Say which written request this records.")
    user = User.objects.filter(email=email).first()
    if purpose.kind == PurposeKind.COOKIE:
        raise ConsentRefused("Cookie choices belong to a browser; the subject makes them there.")
    if purpose.is_marketing and not granted:
        from consent.services.marketing import marketing_optout

        marketing_optout(user=user, email=email, method=ConsentMethod.STAFF, actor=actor, note=note)
    else:
        consent_record(
            purpose=purpose.key,
            granted=granted,
            method=ConsentMethod.STAFF,
            actor=actor,
            user=user,
            email="" if user else email,
            target=target,
            note=note,
        )
    audit_log_write(
        actor=actor,
        action=AuditAction.CONSENT_RECORDED,
        subject=user,
        ip_address=actor_ip,
        detail={"purpose": purpose.key, "granted": granted, "target": target, "note": note[:200]},
    )
