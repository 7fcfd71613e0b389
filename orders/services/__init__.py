"""Order services: the one place the rules live (views, admin, API and tasks call these)."""

from orders.services.orders import (
    is_retoucher,
    order_accept,
    order_assign_retoucher,
    order_cancel,
    order_close,
    order_create_passport,
    order_create_retouch,
    order_discard_empty,
    order_mark_ready,
    order_request_revision,
    order_start_work,
    order_submit,
)
from orders.services.payments import (
    invoice_issue,
    payment_event_apply,
    payment_start,
    payment_webhook_receive,
)
from orders.services.status import TransitionRefused, order_touch, order_transition

__all__ = [
    "TransitionRefused",
    "invoice_issue",
    "is_retoucher",
    "order_accept",
    "order_assign_retoucher",
    "order_cancel",
    "order_close",
    "order_create_passport",
    "order_create_retouch",
    "order_discard_empty",
    "order_mark_ready",
    "order_request_revision",
    "order_start_work",
    "order_submit",
    "order_touch",
    "order_transition",
    "payment_event_apply",
    "payment_start",
    "payment_webhook_receive",
]
