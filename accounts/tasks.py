"""Celery tasks: thin, take ids, safe to run twice."""

from __future__ import annotations

import smtplib

from celery import shared_task
from redis import RedisError

from accounts import emails
from accounts.models import User

# Transient delivery faults are retried with backoff; anything else is a bug and is raised.
TRANSIENT = (smtplib.SMTPException, ConnectionError, TimeoutError, OSError)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 30,
    "retry_backoff_max": 600,
    "max_retries": 8,
    "retry_jitter": True,
}


def _user(user_id: int):

    return User.objects.filter(pk=user_id, is_active=True).first()


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=600, max_retries=8)
def send_verification_email(user_id: int) -> bool:
    user = _user(user_id)
    if user is None or (user.email_verified_at and not user.pending_email):
        return False  # already verified or gone: nothing to send
    emails.verification_email_send(user)
    return True


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=600, max_retries=8)
def send_email_change_notice(user_id: int) -> bool:
    user = _user(user_id)
    if user is None:
        return False
    emails.email_change_notice_send(user)
    return True


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=600, max_retries=8)
def send_password_reset_email(user_id: int) -> bool:
    user = _user(user_id)
    if user is None:
        return False
    emails.password_reset_email_send(user)
    return True


@shared_task
def purge_unverified_accounts() -> int:
    from accounts.services.users import user_purge_unverified

    return user_purge_unverified()


@shared_task(
    autoretry_for=(*TRANSIENT, RedisError), retry_backoff=5, retry_backoff_max=60, max_retries=5
)
def request_log_flush() -> int:
    from accounts.services.requestlog import request_log_flush as flush

    return flush()


@shared_task
def usage_aggregate() -> int:
    from accounts.services.requestlog import usage_aggregate_pending

    return usage_aggregate_pending()
