"""Emails of the consent app.

* The double opt-in confirmation is transactional: it asks, it never advertises.
* Campaign messages are marketing (CON-1): each says it is an advertisement, names the
  seller with its postal address, ends with a one-click unsubscribe link (an https URL
  from SITE_URL, valid without login for UNSUBSCRIBE_LINK_DAYS), and carries the RFC 8058
  headers. A campaign is rendered once per batch (hundreds of recipients) into byte
  segments; each recipient's message is those segments joined with its own address,
  Message-ID and unsubscribe URL, so the template engine never runs per recipient.
"""

from __future__ import annotations

import email.quoprimime
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.message import sanitize_address
from django.template.loader import render_to_string
from django.urls import reverse

from common.fanout import Outgoing
from consent.models import Campaign, Subscriber
from consent.tokens import UnsubscribeSigner, confirmation_token

# --- The double opt-in confirmation (transactional) ---------------------------------------


def subscription_confirmation_send(subscriber: Subscriber) -> None:
    link = settings.SITE_URL + reverse(
        "consent:newsletter_confirm", args=[confirmation_token(subscriber)]
    )
    context = {
        "site_name": settings.SITE_NAME,
        "site_url": settings.SITE_URL,
        "link": link,
        "days": settings.MARKETING_CONFIRM_DAYS,
        "wording": subscriber.wording.text,
    }
    subject = render_to_string("emails/newsletter_confirm_subject.txt", context).strip()
    body = render_to_string("emails/newsletter_confirm.txt", context)
    EmailMessage(subject=subject, body=body, to=[subscriber.email]).send()


# --- Campaign messages (CON-1) -------------------------------------------------------------

TO = "\x00TO\x00"
MSGID = "\x00MSGID\x00"
URL = "\x00URL\x00"
URL_QP = "\x00URLQP\x00"
# Placeholders in rendered text: plain ASCII that no template escaping changes.
_TEXT_URL = "@@UNSUBSCRIBE_URL@@"


class MarketingNotReady(ValueError):
    """Marketing email cannot be sent as configured (e.g. no postal address: CON-1)."""


def marketing_sender() -> tuple[str, str]:
    """(From header, envelope sender) of marketing email."""
    address = settings.MARKETING_FROM_EMAIL or settings.DEFAULT_FROM_EMAIL
    header = sanitize_address((settings.SELLER_NAME, address), "utf-8")
    return header, sanitize_address(address, "utf-8")


def marketing_ready() -> None:
    if not settings.SELLER_ADDRESS.strip():
        raise MarketingNotReady(
            "The seller's postal address (setting SELLER_ADDRESS) is empty: every marketing "
            "email must carry it, so nothing can be sent until it is set."
        )


def site_domain() -> str:
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def unsubscribe_url(token: str) -> str:
    return settings.SITE_URL + reverse("consent:unsubscribe", args=[token])


def _encode_part(text: str) -> tuple[str, list[str | bytes]]:
    """Encode one body part around its URL placeholders: (transfer encoding, segments)."""
    text = text.replace("\r\n", "\n")
    pieces = text.split(_TEXT_URL)
    plain = all(p.isascii() for p in pieces) and all(
        len(line) <= 900 for p in pieces for line in p.split("\n")
    )
    segments: list[str | bytes] = []
    for n, piece in enumerate(pieces):
        if n:
            segments.append(URL if plain else URL_QP)
        if plain:
            segments.append(piece.replace("\n", "\r\n").encode("ascii"))
        else:
            # quoprimime works on bytes-as-latin-1 text (as email.charset feeds it).
            latin = piece.encode("utf-8").decode("latin-1")
            encoded = email.quoprimime.body_encode(latin, maxlinelen=76, eol="\r\n")
            segments.append(encoded.encode("ascii"))
    return ("7bit" if plain else "quoted-printable"), segments


@dataclass
class CampaignTemplate:
    """A campaign rendered once: byte segments with per-recipient placeholders."""

    campaign_id: int
    segments: list[str | bytes]
    sender: str
    test: bool = False

    def message(self, *, item_id: int, subscriber_id: int, email_address: str) -> Outgoing:
        token = self._signer.token(subscriber_id=subscriber_id, email=email_address)
        url = self._url_head + token + self._url_tail
        if email_address.isascii():
            recipient = email_address
        else:
            recipient = sanitize_address(email_address, "utf-8")
        msgid = (
            f"<campaign-{self.campaign_id}.test-{secrets.token_hex(6)}@{self._domain}>"
            if self.test
            else f"<campaign-{self.campaign_id}.{subscriber_id}@{self._domain}>"
        )
        values: dict[str, bytes] = {
            TO: recipient.encode("ascii"),
            MSGID: msgid.encode("ascii"),
            URL: url.encode("ascii"),
        }
        if self._needs_qp:
            values[URL_QP] = email.quoprimime.body_encode(url, maxlinelen=76, eol="\r\n").encode(
                "ascii"
            )
        raw = b"".join(s if isinstance(s, bytes) else values[s] for s in self.segments)
        return Outgoing(item_id=item_id, sender=self.sender, recipient=recipient, raw=raw)

    def messages(self, rows: Iterable[tuple[int, int, str]]) -> Iterable[Outgoing]:
        for item_id, subscriber_id, address in rows:
            yield self.message(item_id=item_id, subscriber_id=subscriber_id, email_address=address)

    def __post_init__(self) -> None:
        self._signer = UnsubscribeSigner()
        self._domain = site_domain()
        self._needs_qp = URL_QP in self.segments
        # reverse() once per campaign, not per recipient.
        self._url_head, self._url_tail = unsubscribe_url("TOKEN").split("TOKEN")


def _header(name: str, value: str) -> str:
    if value.isascii():
        return f"{name}: {value}\r\n"
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n"


def campaign_template(*, campaign: Campaign, test: bool = False) -> CampaignTemplate:
    """Render *campaign* once (raises MarketingNotReady without a postal address)."""
    marketing_ready()
    from_header, envelope = marketing_sender()
    paragraphs = [p.strip() for p in campaign.body.replace("\r\n", "\n").split("\n\n")]
    context: dict[str, Any] = {
        "campaign": campaign,
        "paragraphs": [p for p in paragraphs if p],
        "seller_name": settings.SELLER_NAME,
        "seller_address_lines": [
            line.strip() for line in settings.SELLER_ADDRESS.splitlines() if line.strip()
        ],
        "site_name": settings.SITE_NAME,
        "site_url": settings.SITE_URL,
        "unsubscribe_url": _TEXT_URL,
        "link_days": settings.UNSUBSCRIBE_LINK_DAYS,
        "test": test,
    }
    text = render_to_string("emails/newsletter_campaign.txt", context)
    html = render_to_string("emails/newsletter_campaign.html", context)
    text_cte, text_segments = _encode_part(text)
    html_cte, html_segments = _encode_part(html)
    boundary = f"==newsletter-{secrets.token_hex(12)}=="
    subject = f"[TEST] {campaign.subject}" if test else campaign.subject
    head = _header("From", from_header) + "To: "
    segments: list[str | bytes] = [head.encode("ascii"), TO]
    rest = (
        "\r\n"
        + _header("Subject", subject)
        + f"Date: {formatdate(usegmt=True)}\r\n"
        + "Message-ID: "
    )
    segments += [rest.encode("ascii"), MSGID]
    headers = "\r\nList-Unsubscribe: <"
    segments += [headers.encode("ascii"), URL]
    tail = (
        ">\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        f"List-Id: <newsletter.{site_domain()}>\r\n"
        + ("X-Campaign-Test: yes\r\n" if test else "")
        + "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {text_cte}\r\n"
        "\r\n"
    )
    segments.append(tail.encode("ascii"))
    segments += text_segments
    middle = (
        f"\r\n--{boundary}\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {html_cte}\r\n"
        "\r\n"
    )
    segments.append(middle.encode("ascii"))
    segments += html_segments
    segments.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    # Adjacent byte segments merged: fewer pieces to join per recipient.
    merged: list[str | bytes] = []
    for segment in segments:
        if isinstance(segment, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] = merged[-1] + segment
        else:
            merged.append(segment)
    return CampaignTemplate(campaign_id=campaign.pk, segments=merged, sender=envelope, test=test)
