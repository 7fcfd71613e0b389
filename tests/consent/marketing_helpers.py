"""Shared helpers of the marketing tests: subscribers with consent, campaigns, a sink."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from common.http import RequestMeta
from consent.models import (
    Campaign,
    ConsentMethod,
    Subscriber,
    SubscriberStatus,
    subject_key,
)
from consent.services.ledger import consent_record, consent_text_get
from consent.services.marketing import marketing_wording

META = RequestMeta(ip_address="198.51.100.7", user_agent="Mozilla/5.0 (X11; Linux) Firefox/140")
SELLER_ADDRESS = "Clearframe Photo Ltd\n12 Harbour Road\nDublin D02 XY45\nIreland"


def subscriber_make(address: str, *, user: Any = None, consent: bool = True) -> Subscriber:
    """A confirmed subscriber whose consent is recorded in the ledger (as a confirmation)."""
    wording = consent_text_get(text=marketing_wording())
    subject = subject_key(user_id=user.pk) if user is not None else subject_key(email=address)
    sub = Subscriber.objects.create(
        email=address,
        user=user,
        consent_subject=subject,
        status=SubscriberStatus.CONFIRMED,
        wording=wording,
    )
    if consent:
        consent_record(
            purpose="marketing_email",
            granted=True,
            method=ConsentMethod.EMAIL_LINK,
            user=user,
            email="" if user is not None else address,
            meta=META,
        )
    return sub


def campaign_make(subject: str = "Spring offer", **kwargs: Any) -> Campaign:
    body = kwargs.pop("body", "Passport photos at half price this week.\n\nSee you soon.")
    return Campaign.objects.create(subject=subject, body=body, **kwargs)


@dataclass
class RecordingHandler:
    """An SMTP sink that records each message, and refuses recipients it is told to."""

    messages: list[tuple[list[str], bytes]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> "550 ..." / "451 ..."
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        answer = self.refuse.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content or b"")))
        return "250 Message accepted"

    def recipients(self) -> list[str]:
        with self.lock:
            return [r.lower() for rcpts, _ in self.messages for r in rcpts]


@contextmanager
def smtp_sink(settings: Any, handler: RecordingHandler | None = None) -> Iterator[RecordingHandler]:
    """An in-process aiosmtpd server, made Django's email backend for the block."""
    handler = handler or RecordingHandler()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        yield handler
    finally:
        controller.stop()
