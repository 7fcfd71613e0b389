"""Celery tasks of the orders app: transactional emails (ORD-3), retried on SMTP faults."""

from __future__ import annotations

from celery import shared_task

from accounts.tasks import TRANSIENT


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=600, max_retries=8)
def order_status_email(order_id: int, status: str) -> bool:
    from orders.emails import order_status_email_send
    from orders.models import Order

    order = Order.objects.select_related("customer").filter(pk=order_id).first()
    if order is None or not order.contact_email:
        return False
    if order.customer is not None and not order.customer.is_active:
        return False  # a closed or erased account (DSR-3): nobody to tell at that address
    order_status_email_send(order, status)
    return True
