"""Reads of the images app for the public portfolio (IMG-3), scoped to who asks.

"Live" always means what ``consent_allows`` answers: the subject's latest recorded
choice for purpose "portfolio" and target "result:<id>" is yes, and the purpose is on.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import CharField, Exists, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Concat
from django.http import Http404

from consent.models import ConsentState, subject_key
from consent.selectors import consent_allows
from images.models import PhotoStatus, PortfolioItem, PortfolioStatus, Result, ResultKind
from images.services.access import result_visible_to_customer
from images.services.portfolio import (
    DELIVERED_STATUSES,
    PORTFOLIO_KINDS,
    PURPOSE,
    portfolio_target,
    portfolio_target_result_id,
    portfolio_wording,
    result_portfolio_eligible,
)
from orders.models import Order


def _live_states() -> QuerySet[ConsentState]:
    return ConsentState.objects.filter(purpose__key=PURPOSE, purpose__active=True, granted=True)


def _subject_expr(user_id_field: str) -> Concat:
    """The ledger subject key ("u:<id>") of a row's customer, for batch checks."""
    return Concat(Value("u:"), Cast(user_id_field, output_field=CharField()))


# --- Public ----------------------------------------------------------------------------------


def portfolio_public_items() -> QuerySet[PortfolioItem]:
    """Published items with live permission and their copies made; no customer identity."""
    return (
        PortfolioItem.objects.filter(status=PortfolioStatus.PUBLISHED)
        .exclude(after="")
        .annotate(consent_subject=_subject_expr("customer_id"))
        .filter(
            Exists(
                _live_states().filter(
                    subject=OuterRef("consent_subject"), target=OuterRef("consent_target")
                )
            )
        )
        .only("id", "caption", "before", "after", "published_at")
        .order_by("-published_at", "-id")
    )


def portfolio_public_file(*, item_id: int, side: str) -> tuple[PortfolioItem, str]:
    """(item, stored name) of one public image, checked now: published, permission live.

    Called on every request for the image, so a withdrawal takes effect for the very next
    one; anything else is a 404 that does not say whether the item ever existed.
    """
    if side not in ("before", "after"):
        raise Http404("No such image.")
    item = (
        PortfolioItem.objects.select_related("customer")
        .filter(pk=item_id, status=PortfolioStatus.PUBLISHED)
        .first()
    )
    if item is None or not consent_allows(
        purpose=PURPOSE, user=item.customer, target=item.consent_target
    ):
        raise Http404("No such image.")
    name = getattr(item, side).name or ""
    if not name:
        raise Http404("No such image.")
    return item, name


# --- Staff -----------------------------------------------------------------------------------


def portfolio_candidates() -> QuerySet[Result]:
    """Delivered results whose customer's permission is live now, newest permission first.

    Each row carries ``permission_at`` and ``is_published``.
    """
    state = _live_states().filter(
        subject=OuterRef("consent_subject"), target=OuterRef("consent_target")
    )
    published = PortfolioItem.objects.filter(
        consent_target=OuterRef("consent_target"), status=PortfolioStatus.PUBLISHED
    )
    return (
        Result.objects.filter(
            kind__in=PORTFOLIO_KINDS,
            ready=True,
            order__status__in=DELIVERED_STATUSES,
            order__customer__isnull=False,
        )
        .exclude(file="")
        .annotate(
            consent_subject=_subject_expr("order__customer_id"),
            consent_target=Concat(Value("result:"), Cast("id", output_field=CharField())),
        )
        .annotate(permission_at=Subquery(state.values("updated_at")[:1]))
        .filter(permission_at__isnull=False)
        .annotate(is_published=Exists(published))
        .select_related("order", "photo")
        .order_by("-permission_at", "-id")
    )


def portfolio_candidate_get(*, result_id: int) -> Result:
    result = portfolio_candidates().filter(pk=result_id).first()
    if result is None:
        raise Http404("No result with a live portfolio permission.")
    return result


# --- The customer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PortfolioChoice:
    result: Result
    granted: bool
    published: bool


@dataclass(frozen=True)
class PortfolioOrderSection:
    wording: str  # "" when the purpose is switched off: no new permissions then
    digest: str
    choices: list[PortfolioChoice]


def portfolio_order_section(
    *, user: Any, order: Order, results: Sequence[Result]
) -> PortfolioOrderSection | None:
    """The order page's portfolio choices: the customer's own delivered order only."""
    if not getattr(user, "is_authenticated", False) or order.customer_id != user.pk:
        return None
    eligible = [r for r in results if r.order_id == order.pk and result_portfolio_eligible(r)]
    if not eligible:
        return None
    targets = [portfolio_target(r.pk) for r in eligible]
    granted = set(
        _live_states()
        .filter(subject=subject_key(user_id=user.pk), target__in=targets)
        .values_list("target", flat=True)
    )
    published = set(
        PortfolioItem.objects.filter(
            customer=user, consent_target__in=targets, status=PortfolioStatus.PUBLISHED
        ).values_list("consent_target", flat=True)
    )
    wording, digest = portfolio_wording()
    choices = [
        PortfolioChoice(result=r, granted=t in granted, published=t in published)
        for r, t in zip(eligible, targets, strict=True)
    ]
    return PortfolioOrderSection(wording=wording, digest=digest, choices=choices)


@dataclass(frozen=True)
class PortfolioPermission:
    target: str
    granted_at: datetime
    result: Result | None  # None once the result has been deleted on schedule (IMG-4)
    order_reference: str
    published: bool

    @property
    def label(self) -> str:
        if self.result is None:
            return "A delivered photo (the photo itself has since been deleted)"
        text = self.result.get_kind_display()
        if self.result.round:
            text += f" (revision {self.result.round})"
        return text


def portfolio_permissions(*, user: Any) -> list[PortfolioPermission]:
    """The user's live portfolio permissions, newest first (three queries, whatever the count)."""
    if not getattr(user, "is_authenticated", False):
        return []
    states = list(
        _live_states()
        .filter(subject=subject_key(user_id=user.pk))
        .order_by("-updated_at", "-id")
        .values_list("target", "updated_at")
    )
    if not states:
        return []
    targets = [target for target, _ in states]
    ids = [i for i in (portfolio_target_result_id(t) for t in targets) if i is not None]
    results = {
        r.pk: r
        for r in Result.objects.filter(pk__in=ids, order__customer=user).select_related("order")
    }
    published = set(
        PortfolioItem.objects.filter(
            customer=user, consent_target__in=targets, status=PortfolioStatus.PUBLISHED
        ).values_list("consent_target", flat=True)
    )
    out = []
    for target, at in states:
        result = results.get(portfolio_target_result_id(target) or 0)
        out.append(
            PortfolioPermission(
                target=target,
                granted_at=at,
                result=result,
                order_reference=result.order.reference if result is not None else "",
                published=target in published,
            )
        )
    return out


def portfolio_permission_owned(*, user: Any, target: str) -> bool:
    """Whether *target* is one of the user's own portfolio permissions or items (else 404)."""
    if not getattr(user, "is_authenticated", False):
        return False
    if portfolio_target_result_id(target) is None:
        return False
    answered = ConsentState.objects.filter(
        subject=subject_key(user_id=user.pk), purpose__key=PURPOSE, target=target
    ).exists()
    return answered or PortfolioItem.objects.filter(customer=user, consent_target=target).exists()


# --- The customer's files ---------------------------------------------------------------------


def results_for_customer(*, order: Order, kinds: Collection[str] = ()) -> list[Result]:
    """The order's results its customer may open now (the order page's list), oldest first.

    *order* comes from ``order_get_for_viewer`` (scoped, results prefetched): no query here.
    """
    return [
        r
        for r in order.results.all()
        if result_visible_to_customer(r) and (not kinds or r.kind in kinds)
    ]


@dataclass(frozen=True)
class PassportPreview:
    status: str  # "processing", "ready", "failed" or "deleted"
    reason: str
    preview: Result | None


def passport_preview_state(*, order: Order) -> PassportPreview:
    """Where a passport order's preview is, as its page tells the customer (no query)."""
    previews = results_for_customer(order=order, kinds=[ResultKind.PREVIEW])
    if previews:
        return PassportPreview("ready", "", previews[-1])
    photos = list(order.photos.all())
    rejected = [p for p in photos if p.status == PhotoStatus.REJECTED]
    if rejected:
        return PassportPreview("failed", rejected[-1].reject_reason or order.failure_message, None)
    if any(p.status in (PhotoStatus.PENDING_SCAN, PhotoStatus.PROCESSING) for p in photos):
        # failure_message here is a pause (restriction of processing) the customer can act on.
        return PassportPreview("processing", order.failure_message, None)
    return PassportPreview("deleted", "The photos have been deleted on schedule.", None)
