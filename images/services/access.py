"""Who may open a customer's image (IMG-1, IMG-2), and short-lived signed links to it.

The customer who owns the order (a guest: through their session or emailed link), and
the retoucher assigned to it. Nobody else, staff included. Each staff opening is audited
with the reason (the order). Links live at most SIGNED_URL_MAX_AGE (5 minutes): S3
presigned with SigV4, or the local backend's own signed URL checked by ``file_serve``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.http import Http404
from django.urls import reverse

from accounts.models import AuditAction
from accounts.services import audit_log_write
from images.models import Result, ResultKind
from images.services.passport import PAID_KINDS
from orders.models import Order, OrderStatus

SIGNING_SALT = "images.file"
PAID_STATUSES = frozenset(
    {OrderStatus.PAID, OrderStatus.IN_PROGRESS, OrderStatus.DELIVERED, OrderStatus.CLOSED}
)


def viewer_role(*, user: Any, order: Order, guest_orders: Collection[str] = ()) -> str | None:
    """'customer', 'retoucher', or None (no access: the caller answers 404)."""
    if user.is_authenticated:
        if order.customer_id is not None and order.customer_id == user.pk:
            return "customer"
        if order.retoucher_id is not None and order.retoucher_id == user.pk and user.is_staff:
            return "retoucher"
        return None
    if order.customer_id is None and order.reference in guest_orders:
        return "customer"
    return None


def result_visible_to_customer(result: Result) -> bool:
    if not result.ready:
        return False
    order = result.order
    if result.kind in PAID_KINDS:
        return order.status in PAID_STATUSES
    if result.kind == ResultKind.PREVIEW:
        return True
    # Retouched and automated results: once the retoucher has handed them over; earlier
    # rounds stay visible while a revision is worked on.
    if order.status in (OrderStatus.READY_FOR_REVIEW, OrderStatus.DELIVERED, OrderStatus.CLOSED):
        return True
    return result.round < order.revision_round


def signed_url(*, name: str, filename: str, content_type: str, download: bool) -> str:
    disposition = f'{"attachment" if download else "inline"}; filename="{quote(filename)}"'
    if getattr(default_storage, "bucket", None) is not None:
        return str(
            default_storage.url(  # type: ignore[call-arg]
                name,
                parameters={
                    "ResponseContentDisposition": disposition,
                    "ResponseContentType": content_type,
                    "ResponseCacheControl": "private, no-store",
                },
                expire=settings.SIGNED_URL_MAX_AGE,
            )
        )
    token = signing.dumps(
        {"n": name, "f": filename, "t": content_type, "d": download}, salt=SIGNING_SALT
    )
    return reverse("images:file", args=[token])


def signed_payload(token: str) -> dict[str, Any]:
    """The local backend's link check: bad or older than SIGNED_URL_MAX_AGE is a 404."""
    try:
        data = signing.loads(token, salt=SIGNING_SALT, max_age=settings.SIGNED_URL_MAX_AGE)
    except signing.BadSignature as exc:  # includes SignatureExpired
        raise Http404("This link has expired or is not valid.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("n"), str):
        raise Http404("This link is not valid.")
    return data


def image_open(
    *,
    actor: Any,
    order: Order,
    role: str,
    name: str,
    filename: str,
    content_type: str,
    what: str,
    download: bool,
    ip_address: str | None = None,
) -> str:
    """The signed link for one file; a staff opening is audited with its reason (IMG-2)."""
    if not name:
        raise Http404("This file has been deleted.")
    if role == "retoucher":
        audit_log_write(
            actor=actor,
            action=AuditAction.IMAGE_ACCESSED,
            subject=order.customer,
            ip_address=ip_address,
            detail={
                "order": order.reference,
                "file": what,
                "reason": f"assigned retoucher of order {order.reference}",
                "download": download,
            },
        )
    return signed_url(name=name, filename=filename, content_type=content_type, download=download)
