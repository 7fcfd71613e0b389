"""Newsletter subscriptions: double opt-in (CON-3) and the one opt-out path (CON-2).

Whether we may send is always the ledger's answer (consent_granted at send time); the
Subscriber row only remembers the address, what was shown when the person asked, and
where the double opt-in stands. ``marketing_optout`` is the single way out, used by the
unsubscribe link, the RFC 8058 one-click POST, the account's privacy page and the
"objection to direct marketing" request: it withdraws every marketing purpose for every
ledger subject of the person, at once.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AuditAction, User
from accounts.services.audit import audit_log_write
from common.http import RequestMeta
from consent.models import (
    ConsentMethod,
    ConsentPurpose,
    ConsentState,
    PurposeKind,
    Subscriber,
    SubscriberStatus,
    subject_key,
)
from consent.services.ledger import consent_record, consent_text_get
from consent.services.suppression import suppression_remove
from consent.tokens import confirmation_read

MARKETING_EMAIL = ConsentPurpose.MARKETING_EMAIL


def _normalize(address: str) -> str:
    return (address or "").strip().lower()


def marketing_wording() -> str:
    """The exact wording shown next to the subscribe form (the purpose's, as staff set it)."""
    purpose = ConsentPurpose.objects.filter(key=MARKETING_EMAIL).first()
    return purpose.wording if purpose is not None else ""


def _verified_own_address(user: Any, address: str) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.email_verified_at is not None
        and _normalize(user.email) == address
    )


# --- Subscribing ---------------------------------------------------------------------------


class SubscribeOutcome(enum.Enum):
    SUBSCRIBED = "subscribed"  # recorded at once (a logged-in user's verified address)
    CHECK_EMAIL = "check_email"  # the same answer whatever happened: never reveals status


def _throttled(address: str, ip: str | None) -> bool:
    """At most one confirmation email per address per window; a cap per client address."""
    window = settings.MARKETING_CONFIRM_THROTTLE_SECONDS
    digest = hashlib.sha256(address.encode()).hexdigest()[:24]
    if not cache.add(f"{settings.CACHE_PREFIX}:newsletter:addr:{digest}", 1, window):
        return True
    if ip:
        key = f"{settings.CACHE_PREFIX}:newsletter:ip:{ip}"
        cache.add(key, 0, 3600)
        try:
            count = cache.incr(key)
        except ValueError:
            count = 1
        if count > settings.MARKETING_CONFIRM_PER_IP_HOUR:
            return True
    return False


@transaction.atomic
def marketing_subscribe_request(
    *, email: str, user: Any = None, meta: RequestMeta | None = None
) -> SubscribeOutcome:
    """The subscribe form. A logged-in user's own verified address is recorded at once;
    any other address gets a confirmation link (double opt-in), at most one per window.
    The outcome for other addresses is the same whether or not they were subscribed.
    """
    address = _normalize(email)
    if _verified_own_address(user, address):
        marketing_subscribe_user(user=user, meta=meta)
        return SubscribeOutcome.SUBSCRIBED
    wording = consent_text_get(text=marketing_wording())
    from consent.selectors import policy_current

    subscriber = Subscriber.objects.select_for_update().filter(email=address).first()
    if (
        subscriber is not None
        and subscriber.status == SubscriberStatus.CONFIRMED
        and ConsentState.objects.filter(
            subject=subscriber.consent_subject,
            purpose__key=MARKETING_EMAIL,
            target="",
            granted=True,
        ).exists()
    ):
        return SubscribeOutcome.CHECK_EMAIL  # nothing to do, and nothing said about it
    if _throttled(address, (meta or RequestMeta()).ip_address):
        return SubscribeOutcome.CHECK_EMAIL
    now = timezone.now()
    if subscriber is None:
        subscriber = Subscriber(email=address)
    # Whoever clicks the link proves control of the address, not of an account: the
    # consent will belong to the address (marketing_optout covers both subjects).
    subscriber.consent_subject = subject_key(email=address)
    # A new request: what is shown now is what a confirmation will record (CON-3), and
    # the new request time makes any older confirmation link useless.
    subscriber.status = SubscriberStatus.PENDING
    subscriber.wording = wording
    subscriber.policy_version = policy_current()
    subscriber.requested_at = now
    subscriber.confirmation_sent_at = now
    subscriber.save()

    def enqueue() -> None:
        from consent.tasks import send_subscription_confirmation

        send_subscription_confirmation.delay(subscriber.pk)

    transaction.on_commit(enqueue)
    return SubscribeOutcome.CHECK_EMAIL


@transaction.atomic
def marketing_subscribe_user(
    *, user: User, meta: RequestMeta | None = None, method: ConsentMethod = ConsentMethod.FORM
) -> Subscriber:
    """Subscribe a logged-in user's verified address at once (they proved the address)."""
    if user.email_verified_at is None:
        raise ValueError("Confirm your email address first.")
    address = _normalize(user.email)
    wording_text = marketing_wording()
    wording = consent_text_get(text=wording_text)
    from consent.selectors import policy_current

    now = timezone.now()
    subscriber = Subscriber.objects.select_for_update().filter(email=address).first()
    if subscriber is None:
        subscriber = Subscriber(email=address)
    subscriber.user = user
    subscriber.consent_subject = subject_key(user_id=user.pk)
    subscriber.status = SubscriberStatus.CONFIRMED
    subscriber.wording = wording
    subscriber.policy_version = policy_current()
    subscriber.requested_at = now
    subscriber.confirmed_at = now
    subscriber.unsubscribed_at = None
    subscriber.save()
    consent_record(
        purpose=MARKETING_EMAIL,
        granted=True,
        method=method,
        user=user,
        wording=wording_text,
        meta=meta,
        only_if_changed=True,
    )
    # A verified address of the account holder asking now: as proven as a confirmation
    # click, so it lifts a suppression of the address too (DSR-3).
    suppression_remove(email=address)
    return subscriber


class ConfirmOutcome(enum.Enum):
    CONFIRMED = "confirmed"
    ALREADY = "already"  # a replayed link: harmless, nothing recorded again


@dataclass(frozen=True)
class ConfirmResult:
    outcome: ConfirmOutcome
    subscriber: Subscriber


@transaction.atomic
def marketing_subscribe_confirm(*, token: str, meta: RequestMeta | None = None) -> ConfirmResult:
    """The POST of the confirmation page: record the consent with the evidence of the
    request (wording shown then) and of this click (time, address, browser).

    Raises consent.tokens.LinkError for a forged, altered, expired or superseded link.
    """
    claim = confirmation_read(token)
    subscriber = (
        Subscriber.objects.select_for_update().select_related("wording").get(pk=claim.subscriber.pk)
    )
    if subscriber.status == SubscriberStatus.CONFIRMED:
        return ConfirmResult(ConfirmOutcome.ALREADY, subscriber)
    if subscriber.status != SubscriberStatus.PENDING or subscriber.requested_at != (
        claim.subscriber.requested_at
    ):
        from consent.tokens import LinkError

        raise LinkError("This confirmation link is no longer valid. Subscribe again.")
    user = subscriber.user if subscriber.consent_subject.startswith("u:") else None
    consent_record(
        purpose=MARKETING_EMAIL,
        granted=True,
        method=ConsentMethod.EMAIL_LINK,
        user=user,
        email="" if user is not None else subscriber.email,
        wording=subscriber.wording.text,
        meta=meta,
    )
    subscriber.status = SubscriberStatus.CONFIRMED
    subscriber.confirmed_at = timezone.now()
    subscriber.unsubscribed_at = None
    subscriber.save(update_fields=["status", "confirmed_at", "unsubscribed_at", "updated_at"])
    # An erased person's address is suppressed (DSR-3); only this click, the person's own
    # fresh and proven consent, lifts it. Asking for the link never does.
    suppression_remove(email=subscriber.email)
    return ConfirmResult(ConfirmOutcome.CONFIRMED, subscriber)


# --- Opting out (CON-2) ----------------------------------------------------------------------


@dataclass(frozen=True)
class OptoutResult:
    withdrawn: int  # consent events written
    subscribers: int  # subscriptions marked unsubscribed


@transaction.atomic
def marketing_optout(
    *,
    email: str = "",
    user: Any = None,
    method: ConsentMethod,
    meta: RequestMeta | None = None,
    actor: Any = None,
    note: str = "",
) -> OptoutResult:
    """Withdraw EVERY marketing purpose for every subject of the person, now (CON-2).

    (Except cookie purposes such as advertising: those belong to a browser, not to a
    person, and are withdrawn in that browser's cookie settings.)

    The person is the account *user* and/or the address *email* (and the account with
    that address, if any). Each marketing purpose that stands granted for any of their
    ledger subjects is withdrawn, and the newsletter purpose is recorded as withdrawn
    for each subject even without an earlier answer, so the objection is on record.
    Every subscription of theirs is marked unsubscribed. Idempotent.
    """
    address = _normalize(email)
    person: User | None = user if getattr(user, "is_authenticated", False) else None
    if person is None and address:
        person = User.objects.filter(email=address).first()
    addresses = {a for a in (address, _normalize(person.email) if person else "") if a}
    if person is None and not addresses:
        raise ValueError("Say whose marketing to stop: an account or an email address.")
    subjects: dict[str, dict[str, Any]] = {}
    if person is not None:
        subjects[subject_key(user_id=person.pk)] = {"user": person}
    for a in addresses:
        subjects[subject_key(email=a)] = {"email": a}
    subscribers = list(
        Subscriber.objects.select_for_update().filter(
            Q(email__in=addresses) | Q(user=person) if person else Q(email__in=addresses)
        )
    )
    for sub in subscribers:
        if sub.consent_subject not in subjects:
            key = sub.consent_subject
            subjects[key] = {"user": sub.user} if key.startswith("u:") else {"email": sub.email}
    common = {"method": method, "meta": meta, "actor": actor, "note": note}
    withdrawn = 0
    # Cookie purposes (advertising) are chosen per browser, in the browser's own consent
    # cookie: no email or account reaches them, and the cookie settings page withdraws them.
    granted = (
        ConsentState.objects.filter(
            subject__in=list(subjects), purpose__is_marketing=True, granted=True
        )
        .exclude(purpose__kind=PurposeKind.COOKIE)
        .select_related("purpose")
    )
    done: set[tuple[str, str, str]] = set()
    for state in granted:
        event = consent_record(
            purpose=state.purpose.key,
            granted=False,
            target=state.target,
            **subjects[state.subject],
            **common,
        )
        done.add((state.subject, state.purpose.key, state.target))
        withdrawn += event is not None
    for subject, who in subjects.items():
        if (subject, MARKETING_EMAIL, "") in done:
            continue
        event = consent_record(
            purpose=MARKETING_EMAIL, granted=False, only_if_changed=True, **who, **common
        )
        withdrawn += event is not None
    now = timezone.now()
    changed = Subscriber.objects.filter(pk__in=[s.pk for s in subscribers]).exclude(
        status=SubscriberStatus.UNSUBSCRIBED
    )
    count = changed.update(
        status=SubscriberStatus.UNSUBSCRIBED, unsubscribed_at=now, updated_at=now
    )
    if actor is not None and getattr(actor, "is_staff", False):
        audit_log_write(
            actor=actor,
            action=AuditAction.CONSENT_RECORDED,
            subject=person,
            ip_address=meta.ip_address if meta else None,
            detail={"marketing_optout": True, "withdrawn": withdrawn, "note": note[:200]},
        )
    return OptoutResult(withdrawn=withdrawn, subscribers=count)


# --- Reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketingStatus:
    subscribed: bool
    email: str = ""
    pending: bool = False  # asked, waiting for the confirmation click


def marketing_status(*, user: Any) -> MarketingStatus:
    """Whether the account's person gets the newsletter now (the ledger decides)."""
    if not getattr(user, "is_authenticated", False):
        return MarketingStatus(subscribed=False)
    from consent.selectors import consent_granted

    rows = list(
        Subscriber.objects.filter(Q(user=user) | Q(email=_normalize(user.email)))
        .annotate(ok=consent_granted(purpose=MARKETING_EMAIL))
        .values("email", "status", "ok")
    )
    for row in rows:
        if row["status"] == SubscriberStatus.CONFIRMED and row["ok"]:
            return MarketingStatus(subscribed=True, email=row["email"])
    pending = next((r for r in rows if r["status"] == SubscriberStatus.PENDING), None)
    if pending is not None:
        return MarketingStatus(subscribed=False, email=pending["email"], pending=True)
    return MarketingStatus(subscribed=False)
