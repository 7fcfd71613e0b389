"""Celery tasks of the images app: thin, take ids, idempotent (claims and deterministic keys)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task

# Storage faults worth retrying: the network, the disk, S3 answering 5xx.
TRANSIENT_STORAGE = (OSError, BotoCoreError, ClientError, TimeoutError)
MAX_RETRIES = 6


def _backoff(retries: int) -> int:
    return int(min(600, 5 * 2**retries))


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def photo_process(self: Any, photo_id: int) -> str:
    from images.services import processing

    try:
        return processing.photo_process(photo_id=photo_id)
    except TRANSIENT_STORAGE as exc:
        processing.photo_release(photo_id=photo_id)
        if self.request.retries >= self.max_retries:
            processing.photo_fail(
                photo_id=photo_id,
                reason="We could not process this photo because of a storage fault. "
                "Our team has been told; please try uploading it again later.",
            )
            raise
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc


# Below: Celery's own retry with exponential backoff (nothing to undo on a fault).
STORAGE_RETRY: dict[str, Any] = {
    "autoretry_for": TRANSIENT_STORAGE,
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "max_retries": MAX_RETRIES,
    "acks_late": True,
}


@shared_task(**STORAGE_RETRY)
def result_finalize(result_id: int) -> str:
    from images.services.results import result_finalize as finalize

    return finalize(result_id=result_id)


@shared_task(**STORAGE_RETRY)
def photo_automate(photo_id: int, steps: list[list[Any]]) -> str:
    from images.services.processing import photo_automate as automate

    return automate(photo_id=photo_id, steps=steps)


@shared_task
def photos_sweep() -> dict[str, int]:
    """Every minute: scan what waited for clamd, requeue work whose worker died."""
    from images.services.processing import photos_requeue_stale, photos_rescan_pending

    counts = photos_rescan_pending()
    counts["requeued"] = photos_requeue_stale()
    return counts


# The portfolio's copies (IMG-3): made after a publish, deleted after a withdrawal.
@shared_task(**STORAGE_RETRY)
def portfolio_copies_make(item_id: int) -> str:
    from images.services.portfolio import portfolio_copies_make as make

    return make(item_id=item_id)


@shared_task(**STORAGE_RETRY)
def portfolio_copies_delete(item_id: int) -> str:
    """Retried with backoff; if every retry fails, the retention rule of PortfolioItem
    (withdrawn_at + 0) deletes the row and its files on its next run."""
    from images.services.portfolio import portfolio_copies_delete as delete

    return delete(item_id=item_id)
