"""An order's photos (upload, statuses) and results (signed links) over the API (IMG-1, IMG-5)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api.authentication import request_user
from common.api.errors import domain_error
from common.api.schema import errors
from common.api.throttles import UploadThrottle, throttles
from common.http import client_ip
from images.api.serializers import PhotoUploadSerializer, ResultLinkSerializer
from images.models import Result
from images.selectors import results_for_customer
from images.services.access import image_open
from images.services.intake import UploadRefused, photos_add
from orders.api.serializers import PhotoSerializer, ResultSerializer
from orders.api.views import order_for
from orders.models import Order

# Every refusal of an upload (type, size, pixels, count, malware, not a draft) is one
# exception with a message for the customer; the service does not tell "too large" apart.
domain_error(UploadRefused, status_code=400, code="upload_refused")

E400_UPLOAD = (
    "Invalid input (`invalid`), or the upload was refused (`upload_refused`): not an image, "
    "larger than the size cap, too many pixels or files, malware, or the order is no longer "
    "a draft. Nothing of a refused batch is stored."
)


def result_links(request: Request, order: Order, results: Sequence[Result]) -> list[dict[str, Any]]:
    """Each result with signed links, minted exactly as the web's result view mints them."""
    expires_at = timezone.now() + timedelta(seconds=settings.SIGNED_URL_MAX_AGE)
    ip = client_ip(request._request)

    def link(result: Result, download: bool) -> str:
        url = image_open(
            actor=request.user,
            order=order,
            role="customer",
            name=(result.file.name or "") if result.ready else "",
            filename=result.filename,
            content_type=result.content_type,
            what=f"{result.get_kind_display()} (round {result.round})",
            download=download,
            ip_address=ip,
        )
        return request.build_absolute_uri(url)

    out = []
    for result in results:
        row = dict(ResultSerializer(result).data)
        row.update(url=link(result, False), download_url=link(result, True), expires_at=expires_at)
        out.append(row)
    return list(ResultLinkSerializer(out, many=True).data)


class OrderPhotosView(APIView):
    parser_classes = [MultiPartParser]
    throttle_classes = throttles(UploadThrottle)

    @extend_schema(
        operation_id="orders_photos_list",
        tags=["images"],
        summary="The order's photos and their status",
        responses={200: PhotoSerializer(many=True)},
    )
    def get(self, request: Request, reference: str) -> Response:
        order = order_for(request, reference)
        return Response(PhotoSerializer(order.photos.all(), many=True).data)

    @extend_schema(
        operation_id="orders_photos_upload",
        tags=["images"],
        summary="Add photos to a draft order (all or nothing); answers the added photos",
        description=(
            "multipart/form-data: one or more files in `photos`, optional `note`. Checked "
            "and scanned exactly as on the order page; the photos are then prepared by a "
            "worker (status `processing`, then `ready` or `rejected` with a reason)."
        ),
        request={"multipart/form-data": PhotoUploadSerializer},
        responses={201: PhotoSerializer(many=True), **errors(400, e400=E400_UPLOAD)},
    )
    def post(self, request: Request, reference: str) -> Response:
        order = order_for(request, reference)
        serializer = PhotoUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        note = serializer.validated_data["note"]
        files = serializer.validated_data.get("photos") or []
        added = photos_add(
            actor=request_user(request),
            order=order,
            files=[(f, f.name, note) for f in files],
            ip_address=client_ip(request._request),
        )
        # Read again: a worker may be done with them already.
        fresh = order.photos.filter(pk__in=[p.pk for p in added]).order_by("position", "id")
        data = PhotoSerializer(fresh, many=True).data
        return Response(data, status=status.HTTP_201_CREATED)


class OrderResultsView(APIView):
    @extend_schema(
        operation_id="orders_results_list",
        tags=["images"],
        summary="The order's results you may open now, with signed links",
        description=(
            "Links are signed and short-lived (see `expires_at`); fetching one needs no "
            "token. Ask again for fresh links."
        ),
        responses={200: ResultLinkSerializer(many=True)},
    )
    def get(self, request: Request, reference: str) -> Response:
        order = order_for(request, reference)
        return Response(result_links(request, order, results_for_customer(order=order)))
