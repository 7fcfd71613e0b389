"""The verification email goes through a real Celery worker, real Redis and real SMTP."""

from __future__ import annotations

import mailbox
import os
import time
import uuid
from email.message import Message

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connections

from accounts.models import User
from config.celery import app as celery_app
from tests.accounts.helpers import signup_data
from tests.conftest import need_service


def _close_worker_db_connections(**_: object) -> None:
    # The worker thread has its own connection; close it so the test database can be flushed.
    connections.close_all()


def _wait_for_mail(maildir: str, to: str, timeout: float = 60.0) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isdir(maildir):
            for message in mailbox.Maildir(maildir, create=False):
                if to in (message["To"] or ""):
                    return message
        time.sleep(0.2)
    raise AssertionError(f"no email to {to} arrived in {maildir} within {timeout:.0f}s")


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_signup_email_is_sent_by_a_real_worker(client, settings):
    need_service("REDIS_URL", "Redis")
    smtp_port = int(need_service("TEST_SMTP_PORT", "SMTP sink"))
    maildir = need_service("TEST_MAILDIR", "SMTP sink maildir")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    celery_app.conf.task_always_eager = False
    assert celery_app.conf.broker_url.startswith(("redis://", "rediss://", "redis+socket://"))
    address = f"worker-{uuid.uuid4().hex[:12]}@example.com"

    task_postrun.connect(_close_worker_db_connections, weak=False)
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            response = client.post("/accounts/signup/", signup_data(email=address))
            assert response.status_code == 302
            user = User.objects.get(email=address)
            assert user.email_verified_at is None  # the worker, not the request, sends it

            message = _wait_for_mail(maildir, address)
    finally:
        task_postrun.disconnect(_close_worker_db_connections)

    body = message.get_payload(decode=True).decode()
    assert "/accounts/verify/" in body
    path = body[body.index("/accounts/verify/") :].split()[0]
    assert client.get(path).status_code == 302
    user.refresh_from_db()
    assert user.email_verified_at is not None
