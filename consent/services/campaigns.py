"""Marketing campaigns (CON-1, CON-2): preview, test send, start, cancel, progress.

A started campaign has one CampaignSend row per recipient (unique per subscriber),
created in bulk; the generic fan-out engine (common/fanout.py, kind "consent.campaign")
sends them in batches. Consent is checked per recipient AT SEND TIME, in the batch's one
SELECT: whoever withdrew after the start is SKIPPED, never mailed.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.mail import get_connection
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value
from django.utils import timezone

from accounts.models import AuditAction, User
from accounts.services.audit import audit_log_write
from common.fanout import (
    FanoutKind,
    Outgoing,
    PrebuiltEmail,
    Unsendable,
    fanout_cancel,
    fanout_enqueue,
    fanout_progress,
    fanout_register,
)
from consent.emails import CampaignTemplate, MarketingNotReady, campaign_template
from consent.models import (
    AudienceMember,
    Campaign,
    CampaignSend,
    CampaignStatus,
    ConsentPurpose,
    MarketingSuppression,
    Subscriber,
    SubscriberStatus,
)
from consent.selectors import consent_granted
from consent.services.suppression import suppression_hash

KIND = "consent.campaign"
MARKETING_EMAIL = ConsentPurpose.MARKETING_EMAIL


class CampaignRefused(ValueError):
    """A campaign action that cannot be done; the message says why, for staff."""


# --- Recipients -------------------------------------------------------------------------------


def campaign_audience_filter(campaign: Campaign) -> Q:
    """Subscribers in the campaign's audience (all, without one): by account or address."""
    if campaign.audience_id is None:
        return Q()
    members = AudienceMember.objects.filter(audience_id=campaign.audience_id)
    return Q(Exists(members.filter(user_id=OuterRef("user_id")))) | Q(
        Exists(members.filter(user__email=OuterRef("email")))
    )


def not_restricted(prefix: str = "") -> Q:
    """Subscribers whose processing is not restricted (GDPR Art. 18, DSR-1): by account, by
    address, or by the account that has the address. *prefix* reaches the Subscriber."""
    from dsr.models import ProcessingRestriction
    from dsr.selectors import restricted_email_exists, restricted_user_exists

    by_account_address = ProcessingRestriction.objects.filter(
        lifted_at__isnull=True, user__email__iexact=OuterRef(f"{prefix}email")
    )
    return (
        ~Q(restricted_user_exists(f"{prefix}user_id"))
        & ~Q(restricted_email_exists(f"{prefix}email"))
        & ~Q(restricted_email_exists(f"{prefix}user__email"))
        & ~Q(Exists(by_account_address))
    )


def campaign_recipients(*, campaign: Campaign) -> QuerySet[Subscriber]:
    """Who would get the campaign if it were sent now: confirmed, consenting, in audience,
    not restricted. (Suppressed addresses are keyed hashes: dropped per batch at send.)"""
    return (
        Subscriber.objects.filter(status=SubscriberStatus.CONFIRMED)
        .filter(consent_granted(purpose=MARKETING_EMAIL))
        .filter(not_restricted())
        .filter(campaign_audience_filter(campaign))
    )


# --- Rendering -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    recipient: str
    headers: list[tuple[str, str]]
    text: str
    html: str
    raw: str


def _sample(campaign: Campaign) -> tuple[int, str]:
    first = campaign_recipients(campaign=campaign).order_by("pk").values("pk", "email").first()
    if first is None:
        return 0, "subscriber@example.com"
    return int(first["pk"]), str(first["email"])


def campaign_preview(*, campaign: Campaign) -> Preview:
    """The message exactly as a sample recipient gets it (raises MarketingNotReady)."""
    template = campaign_template(campaign=campaign)
    subscriber_id, address = _sample(campaign)
    out = template.message(item_id=0, subscriber_id=subscriber_id, email_address=address)
    parsed = email.message_from_bytes(out.raw, policy=email.policy.default)
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    return Preview(
        recipient=address,
        headers=[(str(k), str(v)) for k, v in parsed.items()],
        text=str(text_part.get_content()) if text_part is not None else "",
        html=str(html_part.get_content()) if html_part is not None else "",
        raw=out.raw.decode("ascii", errors="replace"),
    )


def _send_one(out: Outgoing) -> None:
    backend = get_connection(fail_silently=False)
    from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

    if isinstance(backend, SMTPBackend):
        with backend:
            assert backend.connection is not None
            backend.connection.sendmail(out.sender, [out.recipient], out.raw)
    else:
        backend.send_messages([PrebuiltEmail(out)])


def campaign_test_send(*, campaign: Campaign, actor: User) -> str:
    """Send the campaign, marked as a test, to the staff member's own address."""
    if not actor.email:
        raise CampaignRefused("Your account has no email address to send the test to.")
    try:
        template = campaign_template(campaign=campaign, test=True)
    except MarketingNotReady as exc:
        raise CampaignRefused(str(exc)) from exc
    out = template.message(item_id=0, subscriber_id=0, email_address=actor.email)
    _send_one(out)
    with transaction.atomic():
        audit_log_write(
            actor=actor,
            action=AuditAction.CAMPAIGN_TEST_SENT,
            detail={"campaign": campaign.pk, "to": actor.email},
        )
    return actor.email


# --- Starting and stopping ---------------------------------------------------------------------


def _insert_sends(campaign: Campaign) -> int:
    """One INSERT .. SELECT: a pending send per confirmed, consenting subscriber in the
    audience. ON CONFLICT: at most one row per (campaign, subscriber), even if run twice."""
    selected = (
        campaign_recipients(campaign=campaign)
        .order_by()
        .annotate(
            c_campaign=Value(campaign.pk),
            c_subscriber=F("pk"),
            c_status=Value(CampaignSend._meta.get_field("status").default),
            c_attempts=Value(0),
            c_error=Value(""),
        )
        .values_list("c_campaign", "c_subscriber", "c_status", "c_attempts", "c_error")
    )
    select_sql, params = selected.query.sql_with_params()
    qn = connection.ops.quote_name
    table = qn(CampaignSend._meta.db_table)
    columns = ", ".join(
        qn(name) for name in ("campaign_id", "subscriber_id", "status", "attempts", "last_error")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) {select_sql} ON CONFLICT DO NOTHING",
            params,
        )
        return int(cursor.rowcount)


def _can_send(actor: Any) -> None:
    if actor is None or not actor.has_perm("consent.send_campaign"):
        raise PermissionDenied("Sending a campaign needs the permission consent.send_campaign.")


@transaction.atomic
def campaign_start(*, campaign: Campaign, actor: User, ip_address: str | None = None) -> int:
    """Start sending: refuses without a postal address or with nobody consenting (CON-1)."""
    _can_send(actor)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignRefused(
            f"This campaign is {campaign.get_status_display().lower()}: only a draft can start."
        )
    try:
        campaign_template(campaign=campaign)  # renders, and checks the postal address
    except MarketingNotReady as exc:
        raise CampaignRefused(str(exc)) from exc
    if not campaign_recipients(campaign=campaign).exists():
        raise CampaignRefused(
            "Nobody would receive this campaign: no confirmed subscriber"
            + (" in its audience" if campaign.audience_id else "")
            + " currently consents to the newsletter."
        )
    now = timezone.now()
    campaign.status = CampaignStatus.SENDING
    campaign.started_at = now
    campaign.started_by = actor
    campaign.save(update_fields=["status", "started_at", "started_by", "updated_at"])
    created = _insert_sends(campaign)
    audit_log_write(
        actor=actor,
        action=AuditAction.CAMPAIGN_STARTED,
        ip_address=ip_address,
        detail={"campaign": campaign.pk, "recipients": created},
    )
    fanout_enqueue(kind=KIND, group_id=campaign.pk)
    return created


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, actor: User, ip_address: str | None = None) -> int:
    """Stop a draft or a campaign being sent: what is still pending is skipped."""
    _can_send(actor)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SENDING):
        raise CampaignRefused("Only a draft or a campaign being sent can be cancelled.")
    campaign.status = CampaignStatus.CANCELLED
    campaign.finished_at = timezone.now()
    campaign.save(update_fields=["status", "finished_at", "updated_at"])
    skipped = fanout_cancel(kind=KIND, group_id=campaign.pk, reason="campaign cancelled")
    audit_log_write(
        actor=actor,
        action=AuditAction.CAMPAIGN_CANCELLED,
        ip_address=ip_address,
        detail={"campaign": campaign.pk, "skipped": skipped},
    )
    return skipped


def campaign_progress(*, campaign: Campaign) -> dict[str, int]:
    return fanout_progress(kind=KIND, group_id=campaign.pk)


# --- The fan-out kind ------------------------------------------------------------------------


def _prepare(campaign_id: int) -> CampaignTemplate | None:
    campaign = Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SENDING).first()
    if campaign is None:
        return None
    try:
        return campaign_template(campaign=campaign)
    except MarketingNotReady:
        # The address was removed after the start: nothing goes out until it is back.
        import logging

        logging.getLogger(__name__).error("campaign %s: no postal address set", campaign_id)
        return None


def _load(qs: QuerySet[Any]) -> QuerySet[Any]:
    # Dicts, not model instances: a 500-row batch is built without 500 object inits.
    return qs.values("pk", "attempts", "subscriber_id", "subscriber__email")


def _suppressed(rows: list[dict[str, Any]]) -> set[str]:
    """The batch's addresses on the suppression list (DSR-3, CON-2): one query per batch.

    The list holds keyed hashes, which SQL cannot compute, so the batch's addresses are
    hashed here and looked up together.
    """
    addresses = {r["subscriber__email"] for r in rows if r["subscriber__email"]}
    hashes = {suppression_hash(address): address for address in addresses}
    if not hashes:
        return set()
    found = MarketingSuppression.objects.filter(email_hash__in=list(hashes)).values_list(
        "email_hash", flat=True
    )
    return {hashes[h] for h in found}


def _build(
    template: CampaignTemplate, rows: list[dict[str, Any]]
) -> Iterator[Outgoing | Unsendable]:
    message = template.message
    suppressed = _suppressed(rows)
    for row in rows:
        subscriber_id, address = row["subscriber_id"], row["subscriber__email"]
        if subscriber_id is None:
            continue  # erased since the start: skipped
        if address in suppressed:
            continue  # an erased person's address come back: never mailed (skipped)
        try:
            yield message(item_id=row["pk"], subscriber_id=subscriber_id, email_address=address)
        except (ValueError, UnicodeError) as exc:
            yield Unsendable(row["pk"], f"address cannot be used: {exc}")


def _eligible() -> Q:
    # Decided now, per recipient, in the batch's SELECT (CON-1, CON-2, DSR-1).
    return (
        Q(consent_granted(purpose=MARKETING_EMAIL, subject_ref="subscriber__consent_subject"))
        & Q(subscriber__status=SubscriberStatus.CONFIRMED)
        & not_restricted("subscriber__")
    )


def _finished(campaign_id: int) -> None:
    Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SENDING).update(
        status=CampaignStatus.SENT, finished_at=timezone.now(), updated_at=timezone.now()
    )


def _open_campaigns() -> QuerySet[Any]:
    # Cancelled ones for a day more: a batch that died while they were cancelled is still
    # settled (its journaled messages recorded as sent).
    recently = timezone.now() - timedelta(days=1)
    return Campaign.objects.filter(
        Q(status=CampaignStatus.SENDING)
        | Q(status=CampaignStatus.CANCELLED, finished_at__gte=recently)
    ).values_list("pk", flat=True)


def _batch_size() -> int:
    from django.conf import settings

    return int(settings.MARKETING_BATCH_SIZE)


fanout_register(
    FanoutKind(
        name=KIND,
        model=CampaignSend,
        group_field="campaign",
        prepare=_prepare,
        load=_load,
        build=_build,
        eligible=_eligible,
        skip_reason="no marketing consent at send time (or restricted, or suppressed)",
        claim_filter=lambda: Q(campaign__status=CampaignStatus.SENDING),
        on_finished=_finished,
        open_groups=_open_campaigns,
        batch_size=_batch_size,
    )
)
