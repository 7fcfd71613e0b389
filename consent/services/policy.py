"""Privacy policy versions (CON-5): drafts, publishing, and the notices that follow.

Publishing a version that reduces users' rights tells every account holder: one email
each through the fan-out engine (common/fanout.py, kind "policy_notice": one
PolicyNoticeSend row per version and user, so it is resumable and never sent twice),
an in-site notification each, and a banner on every page until they acknowledge it.
Any other version shows a dismissable notice for POLICY_NOTICE_DAYS after it takes
effect.

Effective date: a version takes effect when published, unless staff set a later date
on the draft; then it is published at once (the email goes out in advance, as notice of
the change) and becomes the current policy on that date. It may not take effect before
a version already published.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMessage
from django.db import IntegrityError, connections, router, transaction
from django.db.models import (
    DateTimeField,
    Exists,
    Field,
    Max,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditAction, Notification, User
from accounts.services.audit import audit_log_write
from common.fanout import (
    FanoutKind,
    Outgoing,
    fanout_enqueue,
    fanout_progress,
    fanout_register,
)
from common.models import FanoutStatus
from consent.models import (
    PolicyAcknowledgement,
    PolicyNoticeSend,
    PolicyStatus,
    PolicyVersion,
)

PUBLISH_PERMISSION = "consent.publish_policyversion"
# The anonymous notice is read from the cache (no query per page); publishing clears it.
NOTICE_CACHE_KEY = "consent:policy-notice:v1"
NOTICE_CACHE_SECONDS = 60


class PolicyError(ValueError):
    """A policy change that cannot be made as asked; the message says why."""


# --- Drafts ---------------------------------------------------------------------------------
def policy_number_next() -> int:
    return (PolicyVersion.objects.aggregate(m=Max("number"))["m"] or 0) + 1


def policy_draft_save(*, version: PolicyVersion, actor: User | None) -> PolicyVersion:
    """Save a draft; a new one gets the next number. Published versions are never edited."""
    del actor  # drafts are not audited: publishing is, with the final text's number
    if version.pk is not None:
        stored = PolicyVersion.objects.filter(pk=version.pk).values_list("status", flat=True)
        if stored.first() != PolicyStatus.DRAFT:
            raise PolicyError("A published version cannot be changed: write a new draft.")
        version.status = PolicyStatus.DRAFT
        version.save()
        return version
    version.status = PolicyStatus.DRAFT
    # Two staff saving new drafts at once may pick the same number: the unique constraint
    # refuses the second, which takes the next one.
    for _attempt in range(5):
        version.number = policy_number_next()
        try:
            with transaction.atomic():
                version.save()
        except IntegrityError:
            version.pk = None
            continue
        return version
    raise PolicyError("Could not number the new version; please save again.")


# --- Publishing -----------------------------------------------------------------------------
@transaction.atomic
def policy_publish(*, version: PolicyVersion, actor: User) -> PolicyVersion:
    """Publish a draft; for a rights-reducing one, start telling every account holder."""
    if not (actor.is_authenticated and actor.has_perm(PUBLISH_PERMISSION)):
        raise PermissionDenied("You may not publish privacy policy versions.")
    locked = PolicyVersion.objects.select_for_update().filter(pk=version.pk).first()
    if locked is None:
        raise PolicyError("This version no longer exists.")
    if locked.status != PolicyStatus.DRAFT:
        raise PolicyError(f"Version {locked.number} is already published.")
    if not locked.summary.strip():
        raise PolicyError("Write a summary of the changes before publishing.")
    now = timezone.now()
    effective = max(locked.effective_at, now)
    latest = (
        PolicyVersion.objects.filter(status=PolicyStatus.PUBLISHED)
        .order_by("-effective_at")
        .values_list("number", "effective_at")
        .first()
    )
    if latest is not None and latest[1] > effective:
        raise PolicyError(
            f"Version {latest[0]} takes effect on {latest[1]:%Y-%m-%d %H:%M} UTC; "
            "a later version cannot take effect before it."
        )
    locked.status = PolicyStatus.PUBLISHED
    locked.published_at = now
    locked.published_by = actor
    locked.effective_at = effective
    locked.save(
        update_fields=["status", "published_at", "published_by", "effective_at", "updated_at"]
    )
    audit_log_write(
        actor=actor,
        action=AuditAction.POLICY_PUBLISHED,
        detail={
            "version": locked.number,
            "effective_at": effective.isoformat(),
            "reduces_rights": locked.reduces_rights,
        },
    )
    if locked.reduces_rights:
        policy_notice_start(version=locked)
    policy_notice_cache_clear()
    # Another request may refill the cache before this commits: clear it again after.
    transaction.on_commit(policy_notice_cache_clear)
    version.refresh_from_db()
    return locked


# --- Notices on the site --------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyNotice:
    """The one notice a page shows: the newest version this visitor has not dismissed."""

    number: int
    effective_at: datetime
    summary: str
    reduces_rights: bool
    # Account holders acknowledge a rights-reducing change; it stays until they do.
    must_acknowledge: bool = False

    @property
    def in_future(self) -> bool:
        return self.effective_at > timezone.now()


def _notice_cutoff() -> datetime:
    return timezone.now() - timedelta(days=settings.POLICY_NOTICE_DAYS)


def policy_notice_cache_clear() -> None:
    cache.delete(NOTICE_CACHE_KEY)


def _latest_in_window() -> dict[str, Any] | None:
    data = cache.get(NOTICE_CACHE_KEY)
    if data is None:
        row = (
            PolicyVersion.objects.filter(
                status=PolicyStatus.PUBLISHED, effective_at__gte=_notice_cutoff()
            )
            .order_by("-number")
            .values("number", "effective_at", "summary", "reduces_rights")
            .first()
        )
        data = row or {}
        cache.set(NOTICE_CACHE_KEY, data, NOTICE_CACHE_SECONDS)
    return data or None


def policy_notice_for_visitor(*, seen: int) -> PolicyNotice | None:
    """An anonymous visitor's notice: the newest version in its notice window not yet
    dismissed in this browser (*seen*: the number in the "cf_policy_seen" cookie).

    Read from a short-lived cache, so a page costs no query while no notice is active.
    """
    data = _latest_in_window()
    if data is None or data["number"] <= seen or data["effective_at"] < _notice_cutoff():
        return None
    return PolicyNotice(
        number=data["number"],
        effective_at=data["effective_at"],
        summary=data["summary"],
        reduces_rights=data["reduces_rights"],
    )


def policy_notice_for_user(*, user: Any, seen: int = 0) -> PolicyNotice | None:
    """An account holder's notice, in one query: the newest version published while they
    had an account that they have not acknowledged, if it reduces their rights (shown
    until acknowledged) or is still in its notice window (dismissable)."""
    mine = PolicyAcknowledgement.objects.filter(user_id=user.pk)
    latest_seen = mine.order_by("-version__number").values("version__number")[:1]
    row = (
        PolicyVersion.objects.filter(
            Q(reduces_rights=True) | Q(effective_at__gte=_notice_cutoff()),
            status=PolicyStatus.PUBLISHED,
            published_at__gt=user.created_at,
        )
        .exclude(Exists(mine.filter(version=OuterRef("pk"))))
        # Having seen a newer notice (on any device, or in this browser before logging
        # in) covers older ordinary changes; a rights-reducing one is acknowledged itself.
        .exclude(reduces_rights=False, number__lte=seen)
        .exclude(reduces_rights=False, number__lte=Coalesce(Subquery(latest_seen), 0))
        .order_by("-number")
        .values("number", "effective_at", "summary", "reduces_rights")
        .first()
    )
    if row is None:
        return None
    return PolicyNotice(**row, must_acknowledge=row["reduces_rights"])


def policy_acknowledge(*, version: PolicyVersion, user: Any) -> bool:
    """Record that an account holder saw (or acknowledged) a version's notice; idempotent."""
    if version.status != PolicyStatus.PUBLISHED:
        raise PolicyError("Only a published version can be acknowledged.")
    _, created = PolicyAcknowledgement.objects.get_or_create(version=version, user=user)
    return created


def policy_versions_published() -> Any:
    """The version history: every published version, newest first."""
    return PolicyVersion.objects.filter(status=PolicyStatus.PUBLISHED).order_by("-number")


def policy_version_published_get(*, number: int) -> PolicyVersion | None:
    return PolicyVersion.objects.filter(status=PolicyStatus.PUBLISHED, number=number).first()


# --- Telling every account holder of a rights-reducing change (fan-out) ---------------------
NOTICE_KIND = "consent.policy_notice"


def policy_notice_audience() -> QuerySet[User]:
    """Everyone we can write to: active accounts with a verified address."""
    return User.objects.filter(is_active=True, email_verified_at__isnull=False)


def _insert_select(model: type[Model], columns: list[str], select: QuerySet[Any]) -> int:
    """INSERT INTO model (columns) SELECT ...: one statement, however many account holders.

    ON CONFLICT DO NOTHING keeps it harmless to repeat (PostgreSQL and SQLite alike).
    """
    connection = connections[router.db_for_write(model)]
    sql, params = select.query.sql_with_params()
    quote = connection.ops.quote_name
    fields = [cast("Field[Any, Any]", model._meta.get_field(name)) for name in columns]
    cols = ", ".join(quote(field.column or field.name) for field in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} ({cols}) {sql} ON CONFLICT DO NOTHING",
            params,
        )
        return max(cursor.rowcount, 0)


def policy_notice_start(*, version: PolicyVersion) -> int:
    """One email row and one in-site notification per account holder; then send.

    Runs inside policy_publish's transaction, which holds the version's row lock and
    changes its status once: the rows (and so the notifications) are written exactly once,
    or not at all if publishing fails. The unique (version, user) constraint keeps the
    email rows single even if this ran again; the engine sends each row once and resumes
    after a crash from the rows' status.
    """
    now = timezone.now()
    holders = policy_notice_audience().order_by()
    created = _insert_select(
        PolicyNoticeSend,
        ["status", "attempts", "last_error", "version", "user"],
        holders.annotate(
            _status=Value(FanoutStatus.PENDING),
            _attempts=Value(0),
            _error=Value(""),
            _version=Value(version.pk),
        ).values_list("_status", "_attempts", "_error", "_version", "pk"),
    )
    link = reverse("consent:policy_version", args=[version.number])
    title = f"Our privacy policy changes on {version.effective_at:%d %B %Y}"
    _insert_select(
        Notification,
        ["created_at", "updated_at", "title", "body", "link", "user"],
        # The same people as the email rows: one notification each, in the same transaction.
        holders.filter(policy_notices__version=version)
        .annotate(
            _created=Value(now, output_field=DateTimeField()),
            _updated=Value(now, output_field=DateTimeField()),
            _title=Value(title[:200]),
            _body=Value(
                "The change reduces your rights. What changes: "
                + version.summary.strip()
                + " Please read it; the notice stays on the site until you acknowledge it."
            ),
            _link=Value(link),
        )
        .values_list("_created", "_updated", "_title", "_body", "_link", "pk"),
    )
    fanout_enqueue(kind=NOTICE_KIND, group_id=version.pk)
    return created


def policy_notice_progress(*, version: PolicyVersion) -> dict[str, int]:
    return fanout_progress(kind=NOTICE_KIND, group_id=version.pk)


def _notice_prepare(group_id: int) -> Any:
    version = PolicyVersion.objects.filter(
        pk=group_id, status=PolicyStatus.PUBLISHED, reduces_rights=True
    ).first()
    if version is None:
        return None
    context = {
        "version": version,
        "site_name": settings.SITE_NAME,
        "site_url": settings.SITE_URL,
        "link": settings.SITE_URL + reverse("consent:policy_version", args=[version.number]),
        "privacy_link": settings.SITE_URL + reverse("privacy"),
    }
    # Rendered once per batch: the message is the same for every account holder.
    return (
        render_to_string("emails/policy_notice_subject.txt", context).strip(),
        render_to_string("emails/policy_notice.txt", context),
    )


def _notice_build(context: tuple[str, str], rows: list[PolicyNoticeSend]) -> Iterator[Outgoing]:
    subject, body = context
    for row in rows:
        message = EmailMessage(
            subject=subject,
            body=body,
            to=[row.user.email],
            # A service message about the account's terms: never marketing, no unsubscribe.
            headers={"Auto-Submitted": "auto-generated"},
        )
        yield Outgoing.from_email(row.pk, message)


fanout_register(
    FanoutKind(
        name=NOTICE_KIND,
        model=PolicyNoticeSend,
        group_field="version",
        prepare=_notice_prepare,
        load=lambda qs: qs.select_related("user"),
        build=_notice_build,
        # Checked at send time: an account closed or unverified since is skipped.
        eligible=lambda: Q(user__is_active=True, user__email_verified_at__isnull=False),
        skip_reason="account closed or address unverified before sending",
        claim_filter=lambda: Q(version__status=PolicyStatus.PUBLISHED),
        batch_size=lambda: settings.POLICY_NOTICE_BATCH_SIZE,
    )
)
