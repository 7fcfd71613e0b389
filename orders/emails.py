"""Transactional order emails (ORD-3): status updates only, never marketing."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse

from orders.models import Order, OrderStatus
from orders.services.status import ANNOUNCE
from orders.tokens import guest_order_token


def order_link(order: Order) -> str:
    if order.is_guest:
        # A guest has no account: the link itself opens the order (signed, expiring).
        return settings.SITE_URL + reverse("orders:guest_access", args=[guest_order_token(order)])
    return settings.SITE_URL + reverse("orders:detail", args=[order.reference])


def order_status_email_send(order: Order, status: str) -> None:
    context = {
        "site_name": settings.SITE_NAME,
        "order": order,
        "status": OrderStatus(status),
        "title": ANNOUNCE[status].format(ref=order.reference),
        "link": order_link(order),
        "link_days": settings.GUEST_ORDER_LINK_MAX_AGE // 86400,
    }
    body = render_to_string("emails/order_status.txt", context)
    EmailMessage(subject=context["title"], body=body, to=[order.contact_email]).send()
