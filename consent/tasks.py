"""Celery tasks of the consent app: thin, take ids, safe to run twice."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from accounts.tasks import TRANSIENT


@shared_task(ignore_result=True)
def fanout_batch(kind: str, group_id: int) -> dict[str, Any]:
    """Send one batch of a fan-out (common/fanout.py), then continue the chain.

    Each chain handles one batch per task, so a worker's time limit never cuts a long
    campaign; a full batch means more may be pending, so the next task is enqueued.
    """
    from common.fanout import fanout_run_batch

    result = fanout_run_batch(kind=kind, group_id=group_id)
    if result.more:
        fanout_batch.delay(kind, group_id)
    elif result.retry_in is not None:
        # Transient SMTP trouble: the items wait in PENDING until then (the sweep also
        # restarts the group if this message is lost).
        fanout_batch.apply_async((kind, group_id), countdown=result.retry_in)
    return result.as_dict()


@shared_task(ignore_result=True)
def fanout_sweep() -> dict[str, dict[str, int]]:
    """Every minute (beat): recover batches whose worker died, restart stalled fan-outs."""
    from common.fanout import fanout_sweep_all

    return fanout_sweep_all()


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=600, max_retries=8)
def send_subscription_confirmation(subscriber_id: int) -> bool:
    """The double opt-in email (transactional: it asks, it never advertises)."""
    from consent.emails import subscription_confirmation_send
    from consent.models import Subscriber, SubscriberStatus

    subscriber = Subscriber.objects.filter(
        pk=subscriber_id, status=SubscriberStatus.PENDING
    ).first()
    if subscriber is None:
        return False  # confirmed, unsubscribed or gone meanwhile
    subscription_confirmation_send(subscriber)
    return True
