"""End-to-end fixtures: headless Chromium, the live server, a real Celery worker, real SMTP.

Services come from scripts/testenv.py (`make test`): TEST_CHROMIUM, TEST_SMTP_PORT and
TEST_MAILDIR (an aiosmtpd sink writing a Maildir), REDIS_URL (broker) and DATABASE_URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import mailbox
import os
import re
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.apps import apps as django_apps
from django.db import connections
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from accounts.roles import roles_sync
from config.celery import app as celery_app
from tests.conftest import need_service

SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "var" / "e2e"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOTP_STEP = 30


# --- TOTP, computed independently of the app (RFC 6238 over RFC 4226) -----------------------


def totp_at(secret_b32: str, step: int, digits: int = 6) -> str:
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8), casefold=True)
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def current_step() -> int:
    return int(time.time()) // TOTP_STEP


def fresh_totp(secret_b32: str, *, after_step: int | None = None) -> tuple[str, int]:
    """A code for the current time step, waiting for a step later than *after_step*.

    django-otp refuses a code whose time step was already used, so a second login
    right after enrolment waits for the next 30 s boundary instead of replaying.
    """
    step = current_step()
    if after_step is not None and step <= after_step:
        time.sleep((after_step + 1) * TOTP_STEP - time.time() + 0.2)
        step = current_step()
    return totp_at(secret_b32, step), step


# --- Email from the SMTP sink ----------------------------------------------------------------


@dataclass
class Mailbox:
    path: str

    def _body(self, msg: Message) -> str:
        parts = msg.walk() if msg.is_multipart() else [msg]
        texts = []
        for part in parts:
            if part.get_content_type() == "text/plain":
                raw = part.get_payload(decode=True)
                if isinstance(raw, bytes):
                    texts.append(raw.decode(part.get_content_charset() or "utf-8"))
        return "\n".join(texts)

    def wait_for(
        self, to: str, *, subject_contains: str = "", timeout: float = 30.0
    ) -> tuple[str, str]:
        """(subject, body) of the first message to *to*, polling the Maildir."""
        deadline = time.monotonic() + timeout
        while True:
            box = mailbox.Maildir(self.path, create=False)
            for key in box.iterkeys():
                try:
                    msg = box[key]
                except (FileNotFoundError, KeyError):
                    continue  # still being written
                recipients = " ".join(
                    str(msg.get(h, "")) for h in ("To", "X-RcptTo", "Delivered-To")
                ).lower()
                subject = str(msg.get("Subject", ""))
                if to.lower() in recipients and subject_contains in subject:
                    return subject, self._body(msg)
            if time.monotonic() > deadline:
                raise AssertionError(f"no email to {to} arrived at the SMTP sink in {timeout}s")
            time.sleep(0.2)


def link_in(body: str, path_fragment: str) -> str:
    match = re.search(r"https?://\S*" + re.escape(path_fragment) + r"\S*", body)
    assert match, f"no link containing {path_fragment!r} in the email:\n{body}"
    return match.group(0)


# --- Services ----------------------------------------------------------------------------------


@pytest.fixture
def maildir() -> Mailbox:
    need_service("TEST_SMTP_PORT", "The SMTP sink")
    return Mailbox(need_service("TEST_MAILDIR", "The SMTP sink's Maildir"))


@pytest.fixture
def e2e_settings(settings: Any, live_server: Any, maildir: Mailbox) -> Any:
    """Real SMTP to the sink, links built from the live server's address."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = int(os.environ["TEST_SMTP_PORT"])
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.SITE_URL = live_server.url
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    return settings


@pytest.fixture
def celery_worker_thread(e2e_settings: Any) -> Iterator[Any]:
    """A real worker thread on the real Redis broker; the autouse eager mode is turned off.

    Tasks go to a queue of this test's own, so a worker of another test run sharing the
    Redis database cannot take them (and this worker runs nobody else's leftovers).
    """
    need_service("REDIS_URL", "Redis")
    conf = celery_app.conf
    queue = f"e2e-{uuid.uuid4().hex[:12]}"
    old = conf.task_always_eager, conf.task_default_queue
    conf.task_always_eager = False
    conf.task_default_queue = queue  # the router reads it on every send
    try:
        with start_worker(
            celery_app, pool="solo", perform_ping_check=False, queues=[queue]
        ) as worker:
            yield worker
    finally:
        conf.task_always_eager, conf.task_default_queue = old
        celery_app.amqp.queues.select([old[1]])
        with celery_app.connection_for_write() as conn:
            celery_app.amqp.queues[queue].bind(conn.default_channel).delete()


@pytest.fixture
def staff_roles(transactional_db: None) -> None:
    """The role groups come from a data migration, which a transactional flush empties."""
    roles_sync(django_apps)


# --- Browser -----------------------------------------------------------------------------------


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    chromium = need_service("TEST_CHROMIUM", "Chromium")
    # Playwright's sync API keeps an event loop running in this thread; the test's own
    # ORM calls (factories, assertions) are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    pw: Playwright = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        # While Playwright's loop runs, asgiref keeps Django's connections in a context-var
        # store apart from the thread's usual one: close them now, or they outlive the test
        # and block dropping the test database.
        connections.close_all()
        pw.stop()


@pytest.fixture
def page(browser: Browser, e2e_settings: Any, celery_worker_thread: Any) -> Iterator[Page]:
    context = browser.new_context(
        base_url=e2e_settings.SITE_URL, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """Save what the browser shows into var/e2e/NAME.png, for humans to look at."""

    def take(page: Page, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


def log_in(page: Page, email: str, code: str | None = None, *, password: str | None = None) -> None:
    """Log in through the form; *code* answers the second-factor step when given."""
    from tests.factories import PASSWORD

    page.goto("/accounts/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", password or PASSWORD)
    page.get_by_role("button", name="Log in").click()
    if code is not None:
        page.fill("#id_code", code)
        page.get_by_role("button", name="Verify").click()
