"""Emails to the subject of a request. Transactional: never any marketing in these."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse

from dsr.models import Ticket


def ticket_recipient(ticket: Ticket) -> str:
    """The account's current address, else the address the request came from."""
    if ticket.user is not None and ticket.user.is_active and ticket.user.email:
        return ticket.user.email
    return ticket.email


def ticket_email_send(*, ticket_id: int, event: str) -> bool:
    ticket = Ticket.objects.select_related("user").filter(pk=ticket_id).first()
    if ticket is None:
        return False
    to = ticket_recipient(ticket)
    if not to:
        return False  # reduced or erased since: nobody left to tell
    context = {
        "site_name": settings.SITE_NAME,
        "site_url": settings.SITE_URL,
        "ticket": ticket,
        "account_link": (
            settings.SITE_URL + reverse("dsr:ticket", args=[ticket.reference])
            if ticket.user is not None and ticket.user.is_active
            else ""
        ),
        "download_link": _download_link(ticket, event),
        "contact": settings.PRIVACY_CONTACT_EMAIL,
        "export_days": settings.DSR_EXPORT_DAYS,
    }
    subject = render_to_string(f"emails/dsr/{event}_subject.txt", context).strip()
    body = render_to_string(f"emails/dsr/{event}.txt", context)
    EmailMessage(subject=" ".join(subject.split()), body=body, to=[to]).send()
    return True


def _download_link(ticket: Ticket, event: str) -> str:
    if event != "fulfilled" or ticket.type not in ("access", "portability"):
        return ""
    from dsr.services.export import export_download_url

    return export_download_url(ticket=ticket)
