"""The public portfolio (IMG-3): per-image permission, publishing, withdrawal, the copies.

A customer allows or withdraws, per delivered image, its use in the portfolio; the answer
lives in the consent ledger (purpose "portfolio", target "result:<id>"). Staff publish
only while that permission is live, checked at the moment of publishing under a lock on
the customer's current answer, so a withdrawal racing a publish always ends unpublished.

The portfolio shows separate copies (downsized, re-encoded without metadata), so the
customer's originals and results still go by IMG-4 while the copies live exactly as long
as the permission: withdrawing marks the items withdrawn in the same transaction as the
ledger event (gone from the public page at once), then a task deletes the copies, every
stored version. The registry's retention rule deletes whatever a failed task left.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from PIL import Image

from accounts.models import AuditAction
from accounts.services import audit_log_write
from common.http import RequestMeta
from common.imaging import ImageLimits, ImageRejected, sanitize_image
from common.storage import storage_delete_everywhere
from consent.models import (
    ConsentEvent,
    ConsentMethod,
    ConsentPurpose,
    ConsentState,
    ConsentText,
    subject_key,
)
from consent.selectors import consent_allows
from consent.services.ledger import ConsentRefused, consent_purpose_get, consent_record
from images.models import PortfolioItem, PortfolioStatus, Result, ResultKind
from images.operations.retouch import encode
from images.services.access import signed_url
from images.services.processing import storage_write
from orders.models import OrderStatus

PURPOSE = ConsentPurpose.PORTFOLIO
PORTFOLIO_KINDS = frozenset({ResultKind.RETOUCHED, ResultKind.AUTOMATED})
DELIVERED_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.CLOSED})
# Big enough to show the work, too small to be a useful print of the customer's photo.
COPY_MAX_SIDE = 1600
COPY_QUALITY = 85
SIDES = ("before", "after")
TARGET_RE = re.compile(r"^result:([1-9][0-9]{0,17})$")


class PortfolioRefused(Exception):
    """The portfolio action cannot be done; ``message`` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- Targets and eligibility -------------------------------------------------------------------


def portfolio_target(result_id: int) -> str:
    """The ledger's target for one image; it outlives the Result row (IMG-4 deletes that)."""
    return f"result:{result_id}"


def portfolio_target_result_id(target: str) -> int | None:
    match = TARGET_RE.match(target or "")
    return int(match.group(1)) if match else None


def result_portfolio_eligible(result: Result) -> bool:
    """A delivered retouched or automated result of an account's order (never passport
    photos or previews, never a guest's order: guests cannot give a revocable permission)."""
    order = result.order
    return (
        result.kind in PORTFOLIO_KINDS
        and result.ready
        and bool(result.file.name)
        and order.customer_id is not None
        and order.status in DELIVERED_STATUSES
    )


def portfolio_wording() -> tuple[str, str]:
    """(wording, digest) of the portfolio purpose as shown now; ("", "") when switched off."""
    purpose = ConsentPurpose.objects.filter(key=PURPOSE, active=True).first()
    if purpose is None:
        return "", ""
    return purpose.wording, ConsentText.digest_of(purpose.wording)


# --- The customer's permission ----------------------------------------------------------------


def portfolio_permission_grant(
    *, user: Any, result: Result, meta: RequestMeta, wording_digest: str | None = None
) -> ConsentEvent:
    """Record the customer's permission for one delivered image, with the exact wording.

    *wording_digest* is the digest of the text the form showed: if staff reworded the
    purpose in between, the customer is asked to read it again instead of being recorded
    as agreeing to a text they never saw (CON-3).
    """
    if not getattr(user, "is_authenticated", False) or result.order.customer_id != user.pk:
        raise PortfolioRefused("Only the customer who ordered this photo can allow it.")
    if not result_portfolio_eligible(result):
        raise PortfolioRefused(
            "Only delivered retouched photos of your own orders can be shown in the portfolio."
        )
    purpose = consent_purpose_get(key=PURPOSE, for_grant=True)
    if wording_digest is not None and wording_digest != ConsentText.digest_of(purpose.wording):
        raise PortfolioRefused(
            "The wording of this permission has changed since the page was shown. "
            "Please read it again and confirm."
        )
    event = consent_record(
        purpose=PURPOSE,
        target=portfolio_target(result.pk),
        granted=True,
        method=ConsentMethod.FORM,
        user=user,
        wording=purpose.wording,
        meta=meta,
    )
    assert event is not None  # only_if_changed is off: an event is always written
    return event


def portfolio_permission_withdraw(*, user: Any, target: str, meta: RequestMeta) -> int:
    """Withdraw the permission for *target*; returns how many published items went down.

    One transaction: the ledger event, and every published item of the target marked
    WITHDRAWN, so the public page and the image links stop showing it at once. The copies
    are deleted after commit by a task with retries (every version on S3).
    """
    if portfolio_target_result_id(target) is None:
        raise ConsentRefused("Unknown portfolio image.")
    with transaction.atomic():
        consent_record(
            purpose=PURPOSE,
            target=target,
            granted=False,
            method=ConsentMethod.FORM,
            user=user,
            meta=meta,
        )
        items = list(
            PortfolioItem.objects.select_for_update().filter(customer=user, consent_target=target)
        )
        live = [item.pk for item in items if item.status == PortfolioStatus.PUBLISHED]
        if live:
            PortfolioItem.objects.filter(pk__in=live).update(
                status=PortfolioStatus.WITHDRAWN, withdrawn_at=timezone.now()
            )
            audit_log_write(
                actor=user,
                action=AuditAction.PORTFOLIO_UNPUBLISHED,
                subject=user,
                ip_address=meta.ip_address,
                detail={"items": live, "target": target, "reason": "permission withdrawn"},
            )
        # Every item of the target, not only those just withdrawn: a copy left by an
        # earlier failed deletion goes too.
        transaction.on_commit(partial(_enqueue_delete, [item.pk for item in items]))
    return len(live)


# --- Staff: publish and unpublish -----------------------------------------------------------


def _require_publisher(actor: Any) -> None:
    if not (getattr(actor, "is_staff", False) and actor.has_perm("images.publish_portfolio")):
        raise PortfolioRefused("You do not have permission to publish to the portfolio.")


def portfolio_publish(*, result: Result, actor: Any, caption: str = "") -> PortfolioItem:
    """Publish one result whose permission is live now; its copies are made by a worker.

    The copy is a Celery task, not done here: making it decodes the full-size result and
    original, and the web request never decodes full images (IMG-6, DESIGN). Until the
    worker has written the copies the item is published but not listed publicly (the
    public page lists only items whose copies exist).
    """
    _require_publisher(actor)
    result = Result.objects.select_related("order__customer").get(pk=result.pk)
    if not result_portfolio_eligible(result):
        raise PortfolioRefused(
            "Only delivered retouched or automated results can go in the portfolio."
        )
    customer = result.order.customer
    assert customer is not None  # eligible results belong to an account's order
    from dsr.selectors import processing_restricted

    if processing_restricted(user=customer):  # GDPR Art. 18 (DSR-1)
        raise PortfolioRefused(
            "The customer has restricted the processing of their data: nothing of theirs "
            "can be published until the restriction is lifted."
        )
    target = portfolio_target(result.pk)
    with transaction.atomic():
        # Hold the customer's current answer: a withdrawal (which locks the same row to
        # record its event) waits for this commit and then finds and withdraws the new
        # item; one that committed first leaves "no" here and the publish is refused.
        ConsentState.objects.select_for_update(of=("self",)).filter(
            subject=subject_key(user_id=customer.pk), purpose__key=PURPOSE, target=target
        ).first()
        if not consent_allows(purpose=PURPOSE, user=customer, target=target):
            raise PortfolioRefused(
                "The customer has not allowed this image in the portfolio "
                "(or has withdrawn the permission)."
            )
        if PortfolioItem.objects.filter(
            consent_target=target, status=PortfolioStatus.PUBLISHED
        ).exists():
            raise PortfolioRefused("This image is already in the portfolio.")
        try:
            with transaction.atomic():
                item = PortfolioItem.objects.create(
                    customer=customer,
                    result=result,
                    consent_target=target,
                    caption=caption.strip()[:200],
                    status=PortfolioStatus.PUBLISHED,
                    published_by=actor,
                    published_at=timezone.now(),
                )
        except IntegrityError as exc:  # another publisher won the race
            raise PortfolioRefused("This image is already in the portfolio.") from exc
        audit_log_write(
            actor=actor,
            action=AuditAction.PORTFOLIO_PUBLISHED,
            subject=customer,
            detail={"item": item.pk, "target": target, "order": result.order.reference},
        )
        transaction.on_commit(partial(_enqueue_make, item.pk))
    return item


def portfolio_candidate_open(
    *, actor: Any, result: Result, side: str, ip_address: str | None = None
) -> str:
    """A signed link to a candidate's image for the publisher, audited with its reason.

    Staff see a customer's image only for a reason (IMG-2): here, deciding whether to
    publish it, and only while the customer's permission for it is live.
    """
    _require_publisher(actor)
    order = result.order
    if not result_portfolio_eligible(result) or not consent_allows(
        purpose=PURPOSE, user=order.customer, target=portfolio_target(result.pk)
    ):
        raise PortfolioRefused("This image has no live portfolio permission.")
    if side == "after":
        name, content_type = result.file.name or "", result.content_type
        what = f"{result.get_kind_display()} (round {result.round})"
    elif side == "before" and result.photo is not None and result.photo.file.name:
        name = result.photo.file.name
        content_type = "image/png" if name.endswith(".png") else "image/jpeg"
        what = f"original photo {result.photo.position + 1}"
    else:
        raise PortfolioRefused("No such image.")
    with transaction.atomic():
        audit_log_write(
            actor=actor,
            action=AuditAction.IMAGE_ACCESSED,
            subject=order.customer,
            ip_address=ip_address,
            detail={
                "order": order.reference,
                "file": what,
                "reason": "portfolio",
                "target": portfolio_target(result.pk),
                "download": False,
            },
        )
    ext = "png" if content_type == "image/png" else "jpg"
    return signed_url(
        name=name,
        filename=f"{order.reference}-{side}.{ext}",
        content_type=content_type,
        download=False,
    )


def portfolio_unpublish(*, item: PortfolioItem, actor: Any) -> bool:
    """Staff take an item down; its copies are deleted after commit. False if not live."""
    _require_publisher(actor)
    with transaction.atomic():
        done = _take_down(item, actor=actor, reason="staff")
        if done:
            transaction.on_commit(partial(_enqueue_delete, [item.pk]))
    return done


def portfolio_take_down_subject(*, user: Any, actor: Any, reason: str) -> int:
    """Take down every live item of *user* (a restriction of processing: DSR-1); their
    copies are deleted after commit. The permissions stay in the ledger. Returns how many."""
    with transaction.atomic():
        items = list(
            PortfolioItem.objects.select_for_update().filter(
                customer=user, status=PortfolioStatus.PUBLISHED
            )
        )
        done = [item.pk for item in items if _take_down(item, actor=actor, reason=reason)]
        if done:
            transaction.on_commit(partial(_enqueue_delete, done))
    return len(done)


def _take_down(item: PortfolioItem, *, actor: Any, reason: str) -> bool:
    """Unpublish a live item and audit why (the caller's transaction); False if not live."""
    done = PortfolioItem.objects.filter(pk=item.pk, status=PortfolioStatus.PUBLISHED).update(
        status=PortfolioStatus.UNPUBLISHED, withdrawn_at=timezone.now()
    )
    if done:
        audit_log_write(
            actor=actor,
            action=AuditAction.PORTFOLIO_UNPUBLISHED,
            subject=item.customer,
            detail={"items": [item.pk], "target": item.consent_target, "reason": reason},
        )
    return bool(done)


# --- The copies (run by workers) ----------------------------------------------------------------


def copy_name(item_id: int, side: str) -> str:
    """Where an item's copy is stored: unguessable, and the same on every retry.

    A keyed hash of the item and side, not secrets.token_hex: a retried task overwrites
    its own file instead of leaving an unreferenced one, and the deletion can find a copy
    even if a worker died between writing it and recording it on the row.
    """
    token = salted_hmac("images.portfolio.copy", f"{item_id}:{side}").hexdigest()[:32]
    return f"portfolio/{token}.jpg"


def _copy_limits() -> ImageLimits:
    # The sources were made by us from checked uploads; a retoucher's quality-95 result
    # may be somewhat larger than the upload it came from.
    return ImageLimits(
        max_bytes=settings.UPLOAD_MAX_BYTES * 2,
        max_pixels=settings.UPLOAD_MAX_PIXELS,
        max_side=settings.UPLOAD_MAX_SIDE,
        max_aspect=settings.UPLOAD_MAX_ASPECT,
    )


def _make_copy(source: str, target: str) -> str:
    """Downsize and re-encode *source* as a metadata-free JPEG at *target*."""
    with default_storage.open(source, "rb") as fh:
        clean = sanitize_image(fh, _copy_limits(), fit_to=COPY_MAX_SIDE, quality=COPY_QUALITY)
    data = clean.content
    if clean.content_type != "image/jpeg":  # transparency: flattened onto white
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            data = encode(img, "JPEG", quality=COPY_QUALITY, optimize=True)
    return storage_write(target, data)


def _give_up(item: PortfolioItem, reason: str) -> str:
    with transaction.atomic():
        _take_down(item, actor=None, reason=reason)
    portfolio_copies_delete(item_id=item.pk)
    return f"unpublished: {reason}"


def portfolio_copies_make(*, item_id: int) -> str:
    """Write the item's copies; idempotent, and never leaves a copy of a withdrawn item."""
    item = (
        PortfolioItem.objects.select_related("result__photo", "customer")
        .filter(pk=item_id, status=PortfolioStatus.PUBLISHED)
        .first()
    )
    if item is None:
        return "skipped"
    if item.after:
        return "done"
    result = item.result
    if result is None or not result.file.name:
        return _give_up(item, "the image was deleted before its copy was made")
    try:
        after = _make_copy(result.file.name, copy_name(item.pk, "after"))
        photo = result.photo
        before = ""
        if photo is not None and photo.file.name:
            before = _make_copy(photo.file.name, copy_name(item.pk, "before"))
    except FileNotFoundError:
        return _give_up(item, "the image was deleted before its copy was made")
    except ImageRejected:
        return _give_up(item, "the image could not be copied")
    recorded = PortfolioItem.objects.filter(pk=item.pk, status=PortfolioStatus.PUBLISHED).update(
        before=before, after=after
    )
    if not recorded:  # withdrawn while we worked: what we wrote must not stay
        portfolio_copies_delete(item_id=item.pk)
        return "withdrawn"
    return "ready"


def portfolio_copies_delete(*, item_id: int) -> str:
    """Delete an item's copies, every version; never those of a live item. Idempotent."""
    item = PortfolioItem.objects.filter(pk=item_id).first()
    if item is not None and item.status == PortfolioStatus.PUBLISHED:
        return "skipped"
    recorded = {n for n in ((item.before.name, item.after.name) if item else ()) if n}
    for name in recorded:
        storage_delete_everywhere(name)
    for name in {copy_name(item_id, side) for side in SIDES} - recorded:
        # Only if present: on a versioned bucket, deleting a missing key adds a marker.
        if default_storage.exists(name):
            storage_delete_everywhere(name)
    if item is not None:
        PortfolioItem.objects.filter(pk=item.pk).exclude(status=PortfolioStatus.PUBLISHED).update(
            before="", after=""
        )
    return "deleted"


def _enqueue_make(item_id: int) -> None:
    from images import tasks

    tasks.portfolio_copies_make.delay(item_id)


def _enqueue_delete(item_ids: Iterable[int]) -> None:
    from images import tasks

    for item_id in item_ids:
        tasks.portfolio_copies_delete.delay(item_id)
