"""Telling the affected of a confirmed breach: the email fan-out, progress, alerts (BRE-1).

The emails go through the generic fan-out engine (common/fanout.py) as kind "dsr.breach":
one IncidentRecipient row per address (unique per incident, so "exactly once" is a fact
of the database), claimed by parallel workers with SKIP LOCKED, journaled for crash
recovery, throttled to BREACH_SEND_RATE. The in-site notices (BreachNotice rows) are
written when the scope is frozen; the banner shows them until acknowledged.

The message is the text stored on the incident, byte for byte; only the envelope
(To, Message-ID) differs per recipient, so the MIME message is built once per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.message import sanitize_address
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent, User
from accounts.services import audit_log_write, notification_create
from common.fanout import (
    FanoutKind,
    Outgoing,
    fanout_enqueue,
    fanout_progress,
    fanout_register,
)
from dsr.models import BreachNotice, Incident, IncidentRecipient, IncidentStatus
from dsr.registry import ERASED_EMAIL_DOMAIN
from dsr.services.verification import privacy_officers

logger = logging.getLogger(__name__)

KIND = "dsr.breach"
SENDING_STATUSES = (IncidentStatus.CONFIRMED, IncidentStatus.NOTIFYING)
# Percent of the users' clock at which privacy officers are alerted if work remains.
ALERT_THRESHOLDS = (50, 80)


# --- The fan-out kind --------------------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    """What every message of one incident shares: built once per batch."""

    reference: str
    sender: str
    head: bytes  # the headers common to all, ending with CRLF
    rest: bytes  # the blank line and the body


def _prepare(group_id: int) -> _Batch | None:
    incident = Incident.objects.filter(pk=group_id, status__in=SENDING_STATUSES).first()
    if incident is None:
        return None
    body = render_to_string(
        "emails/dsr/breach.txt",
        {"incident": incident, "site_name": settings.SITE_NAME, "site_url": settings.SITE_URL},
    )
    message = EmailMessage(
        subject=incident.message_subject.strip(),
        body=body,
        to=["placeholder@" + ERASED_EMAIL_DOMAIN],
        # A legal notice about the account holder's data: never marketing, no unsubscribe.
        headers={"Auto-Submitted": "auto-generated", "X-Incident": incident.reference},
    )
    mime = message.message()
    del mime["To"]
    del mime["Message-ID"]
    raw = mime.as_bytes(linesep="\r\n")  # type: ignore[call-arg]
    head, _, rest = raw.partition(b"\r\n\r\n")
    return _Batch(
        reference=incident.reference,
        sender=sanitize_address(message.from_email, settings.DEFAULT_CHARSET),
        head=head + b"\r\n",
        rest=b"\r\n" + rest,
    )


def _build(batch: _Batch, rows: list[dict[str, Any]]) -> Iterator[Outgoing]:
    domain = settings.SITE_URL.split("://")[-1].split("/")[0].split(":")[0] or "localhost"
    for row in rows:
        # Punycode / encoded words for an internationalised address; ASCII passes as is.
        address = sanitize_address(row["email"], settings.DEFAULT_CHARSET)
        # A stable Message-ID per recipient: a resend after a crash is recognisable.
        extra = f"To: {address}\r\nMessage-ID: <{batch.reference}.{row['pk']}@{domain}>\r\n"
        yield Outgoing(row["pk"], batch.sender, address, batch.head + extra.encode() + batch.rest)


def _eligible() -> Q:
    # Checked at send time: an account erased or closed since the scope was frozen is
    # skipped (counted, never sent to). Guests have no account to check.
    return Q(user__isnull=True) | (
        Q(user__is_active=True) & ~Q(user__email__iendswith="@" + ERASED_EMAIL_DOMAIN)
    )


def _finished(group_id: int) -> None:
    """Nothing pending or sending: NOTIFYING -> NOTIFIED, once (the UPDATE decides)."""
    with transaction.atomic():
        done = Incident.objects.filter(pk=group_id, status=IncidentStatus.NOTIFYING).update(
            status=IncidentStatus.NOTIFIED
        )
        if done:
            incident = Incident.objects.get(pk=group_id)
            counts = fanout_progress(kind=KIND, group_id=group_id)
            audit_log_write(
                actor=None,
                action=AuditAction.BREACH_NOTIFIED,
                detail={"incident": incident.reference, **counts},
            )


def _rate() -> float | None:
    rate = float(getattr(settings, "BREACH_SEND_RATE", 0) or 0)
    return rate if rate > 0 else None


fanout_register(
    FanoutKind(
        name=KIND,
        model=IncidentRecipient,
        group_field="incident",
        prepare=_prepare,
        load=lambda qs: qs.values("pk", "attempts", "email"),
        build=_build,
        eligible=_eligible,
        skip_reason="erased: the account was erased or closed before sending",
        claim_filter=lambda: Q(incident__status__in=SENDING_STATUSES),
        on_finished=_finished,
        open_groups=lambda: Incident.objects.filter(status__in=SENDING_STATUSES).values_list(
            "pk", flat=True
        ),
        batch_size=lambda: int(getattr(settings, "BREACH_BATCH_SIZE", 500)),
        rate_limit=_rate,
    )
)


# --- Starting, checking the rate, progress ------------------------------------------------


@dataclass(frozen=True)
class RateCheck:
    recipients: int
    rate: float | None  # messages per second; None = unlimited
    needed: timedelta | None  # at that rate; None when unlimited
    left: timedelta | None  # until the users' clock runs out
    ok: bool
    message: str


def incident_rate_check(*, incident: Incident, now: datetime | None = None) -> RateCheck:
    """Can the remaining recipients be sent before users_due at BREACH_SEND_RATE?"""
    now = now or timezone.now()
    remaining = incident.recipients.filter(status__in=["pending", "sending"]).count()
    rate = _rate()
    left = incident.users_due - now if incident.users_due else None
    needed = timedelta(seconds=remaining / rate) if rate else None
    ok = needed is None or left is None or needed <= left
    if ok:
        message = f"{remaining} emails to send; the sending rate meets the deadline."
    else:
        message = (
            f"{remaining} emails at {rate:g}/s need {needed}, but only {left} is left "
            "before the users' deadline: raise BREACH_SEND_RATE or the provider's limit."
        )
    return RateCheck(remaining, rate, needed, left, ok, message)


def _alert_officers(title: str, body: str, incident: Incident) -> None:
    try:
        link = reverse("admin:dsr_incident_change", args=[incident.pk])
    except NoReverseMatch:  # the register's admin is not installed
        link = ""
    for officer in privacy_officers():
        notification_create(user=officer, title=title, body=body, link=link)


def incident_notify_start(*, incident: Incident, actor: User) -> RateCheck:
    """CONFIRMED -> NOTIFYING and start the fan-out when the transaction commits.

    Call it in the transaction that confirms the incident; running it twice enqueues
    extra chains at most (they find nothing left to claim).
    """
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk, status=IncidentStatus.CONFIRMED).update(
            status=IncidentStatus.NOTIFYING
        )
        incident.refresh_from_db()
        check = incident_rate_check(incident=incident)
        if not check.ok:
            logger.warning("breach %s: %s", incident.reference, check.message)
            _alert_officers(
                f"{incident.reference}: the deadline is at risk", check.message, incident
            )
        audit_log_write(
            actor=actor,
            action=AuditAction.BREACH_NOTIFYING,
            detail={
                "incident": incident.reference,
                "recipients": check.recipients,
                "rate_ok": check.ok,
            },
        )
        fanout_enqueue(kind=KIND, group_id=incident.pk)
    return check


@dataclass(frozen=True)
class IncidentProgress:
    sent: int
    failed: int
    pending: int  # pending or being sent
    retrying: int  # pending after a transient failure
    skipped: int  # erased or closed before sending
    notices: int
    acknowledged: int
    time_left: timedelta | None
    at_risk: bool

    @property
    def total(self) -> int:
        return self.sent + self.failed + self.pending + self.skipped


def incident_progress(*, incident: Incident, now: datetime | None = None) -> IncidentProgress:
    """Counts for the admin, and whether the users' deadline is at risk."""
    now = now or timezone.now()
    counts = fanout_progress(kind=KIND, group_id=incident.pk)
    retrying = incident.recipients.filter(status="pending", attempts__gt=0).count()
    notices = BreachNotice.objects.filter(incident=incident)
    pending = counts["pending"] + counts["sending"]
    time_left = incident.users_due - now if incident.users_due else None
    late = time_left is not None and time_left <= timedelta(0) and pending > 0
    at_risk = bool(counts["failed"] or retrying or late) or (
        pending > 0 and not incident_rate_check(incident=incident, now=now).ok
    )
    return IncidentProgress(
        sent=counts["sent"],
        failed=counts["failed"],
        pending=pending,
        retrying=retrying,
        skipped=counts["skipped"],
        notices=notices.count(),
        acknowledged=notices.filter(acknowledged_at__isnull=False).count(),
        time_left=time_left,
        at_risk=at_risk,
    )


def breach_alert_sweep(*, now: datetime) -> dict[str, int]:
    """Alert privacy officers at 50% and 80% of the users' clock if emails remain.

    Once per incident and threshold: the audit row written with the alert is the marker
    (same transaction), looked up before alerting.
    """
    alerts = 0
    for incident in Incident.objects.filter(
        status__in=SENDING_STATUSES, confirmed_at__isnull=False, users_due__isnull=False
    ):
        start, end = incident.confirmed_at, incident.users_due
        if start is None or end is None or end <= start:
            continue
        elapsed = 100 * (now - start).total_seconds() / (end - start).total_seconds()
        due = [t for t in ALERT_THRESHOLDS if elapsed >= t]
        if not due:
            continue
        remaining = incident.recipients.filter(status__in=["pending", "sending"]).count()
        if not remaining:
            continue
        for threshold in due:
            with transaction.atomic():
                marker = AuditEvent.objects.filter(
                    action=AuditAction.BREACH_ALERT,
                    detail__incident=incident.reference,
                    detail__alert=threshold,
                )
                if marker.exists():
                    continue
                _alert_officers(
                    f"{incident.reference}: {threshold}% of the users' time used",
                    f"{remaining} emails are still unsent; the deadline is "
                    f"{incident.users_due:%Y-%m-%d %H:%M} UTC.",
                    incident,
                )
                audit_log_write(
                    actor=None,
                    action=AuditAction.BREACH_ALERT,
                    detail={"incident": incident.reference, "alert": threshold, "left": remaining},
                )
                alerts += 1
    return {"alerts": alerts}


# --- The in-site notice --------------------------------------------------------------------


def breach_notice_unacknowledged(*, user: Any) -> BreachNotice | None:
    """The oldest notice the user has not acknowledged (the banner's one indexed query)."""
    return (
        BreachNotice.objects.filter(user=user, acknowledged_at__isnull=True)
        .select_related("incident")
        .order_by("created_at", "pk")
        .first()
    )


def breach_notice_for_user(*, user: Any, notice_id: int) -> BreachNotice | None:
    """One of the user's own notices; another user's id matches nothing (a 404)."""
    return BreachNotice.objects.filter(pk=notice_id, user=user).select_related("incident").first()


def breach_notice_acknowledge(*, user: Any, notice_id: int) -> bool:
    """Mark one of the user's own notices read; True if it exists (idempotent)."""
    notice = breach_notice_for_user(user=user, notice_id=notice_id)
    if notice is None:
        return False
    BreachNotice.objects.filter(pk=notice.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now()
    )
    return True
