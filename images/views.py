"""Opening images: permission check, then a short-lived signed link (IMG-1, IMG-2).

Another person's photo or result is a 404, whoever asks, staff included, unless they are
the retoucher assigned to the order (and then the opening is audited).
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.cache import never_cache

from common.http import client_ip
from images.models import Photo, Result
from images.services.access import (
    image_open,
    result_visible_to_customer,
    signed_payload,
    viewer_role,
)
from orders.models import Order
from orders.selectors import guest_orders


def _role(request: HttpRequest, order: Order) -> str | None:
    return viewer_role(user=request.user, order=order, guest_orders=guest_orders(request.session))


def _signed_redirect(
    request: HttpRequest, order: Order, role: str, *, name: str, filename: str, **file: str
) -> HttpResponseBase:
    url = image_open(
        actor=request.user,
        order=order,
        role=role,
        name=name,
        filename=filename,
        download=request.GET.get("download") == "1",
        ip_address=client_ip(request),
        **file,
    )
    return redirect(url)


@never_cache
def photo_open(request: HttpRequest, photo_id: int) -> HttpResponseBase:
    photo = get_object_or_404(Photo.objects.select_related("order"), pk=photo_id)
    role = _role(request, photo.order)
    name = photo.file.name or ""
    if role is None or not name:
        raise Http404("No such photo.")
    return _signed_redirect(
        request,
        photo.order,
        role,
        name=name,
        filename=f"{photo.order.reference}-photo-{photo.position + 1}.{name.rsplit('.', 1)[-1]}",
        content_type="image/png" if name.endswith(".png") else "image/jpeg",
        what=f"original photo {photo.position + 1}",
    )


@never_cache
def result_open(request: HttpRequest, result_id: int) -> HttpResponseBase:
    result = get_object_or_404(Result.objects.select_related("order"), pk=result_id)
    role = _role(request, result.order)
    if role is None or (role == "customer" and not result_visible_to_customer(result)):
        raise Http404("No such file.")
    return _signed_redirect(
        request,
        result.order,
        role,
        name=(result.file.name or "") if result.ready else "",
        filename=result.filename,
        content_type=result.content_type,
        what=f"{result.get_kind_display()} (round {result.round})",
    )


@never_cache
def file_serve(request: HttpRequest, token: str) -> HttpResponseBase:
    """The local backend's signed link: valid for SIGNED_URL_MAX_AGE, for anyone holding it."""
    data = signed_payload(token)
    try:
        fh = default_storage.open(data["n"], "rb")
    except FileNotFoundError as exc:
        raise Http404("This file has been deleted.") from exc
    response = FileResponse(
        fh,
        as_attachment=bool(data.get("d")),
        filename=str(data.get("f", "image.jpg")),
        content_type=str(data.get("t", "application/octet-stream")),
    )
    response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
