"""Passport/ID photos over the API (IMG-6): the documents, an order from a selfie, its files.

Signed-in customers only; guests use the web page (ACC-4), which keeps their orders in
the browser session.
"""

from __future__ import annotations

import hashlib
from typing import IO, Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api.authentication import request_user
from common.api.errors import ApiError, error_body
from common.api.schema import errors
from common.api.throttles import UploadThrottle, throttles
from common.http import client_ip
from images.api.serializers import (
    DocumentSerializer,
    PassportCreateSerializer,
    PassportFilesSerializer,
    PassportPreviewSerializer,
)
from images.api.views import result_links
from images.passport_specs import DOCUMENT_SPECS, PRINT_DPI
from images.selectors import passport_preview_state, results_for_customer
from images.services.access import PAID_STATUSES
from images.services.intake import UploadRefused, passport_order_start
from images.services.passport import PAID_KINDS
from orders.api.idempotency import IDEMPOTENCY_ERRORS, IDEMPOTENCY_PARAMETER, keyed_create
from orders.api.serializers import OrderDetailSerializer
from orders.api.views import order_body
from orders.models import Order
from orders.selectors import passport_order_get_for_viewer

TAGS = ["passport"]


def _sha256(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
    stream.seek(0)  # the upload service reads it from the start
    return digest.hexdigest()


def _passport_order(request: Request, reference: str) -> Order:
    return passport_order_get_for_viewer(user=request.user, reference=reference)


class DocumentListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="passport_documents_list",
        tags=TAGS,
        summary="The passport and ID photo formats we make",
        responses={200: DocumentSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        rows = [
            {
                "key": spec.key,
                "name": spec.label,
                "country": spec.country,
                "width_mm": spec.width_mm,
                "height_mm": spec.height_mm,
                "head_min_mm": spec.head_min_mm,
                "head_max_mm": spec.head_max_mm,
                "print_width_px": spec.print_px[0],
                "print_height_px": spec.print_px[1],
                "dpi": PRINT_DPI,
                "digital_width_px": spec.digital_size[0],
                "digital_height_px": spec.digital_size[1],
                "digital_max_bytes": spec.digital_max_bytes,
                "background": spec.background,
                "source": spec.source,
                "price_minor": settings.PASSPORT_PRICE_MINOR,
                "currency": settings.ORDER_CURRENCY,
            }
            for spec in DOCUMENT_SPECS.values()
        ]
        return Response(DocumentSerializer(rows, many=True).data)


class PassportCreateView(APIView):
    parser_classes = [MultiPartParser]
    throttle_classes = throttles(UploadThrottle)

    @extend_schema(
        operation_id="passport_orders_create",
        tags=TAGS,
        summary="A passport photo order from a selfie",
        description=(
            "multipart/form-data {document, selfie}. The selfie is checked and scanned as "
            "on the web page; a worker then makes the preview (see .../preview/). A refused "
            "selfie leaves no order behind (400 `upload_refused`; with an Idempotency-Key "
            "that answer is what a retry gets)."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request={"multipart/form-data": PassportCreateSerializer},
        responses={
            201: OrderDetailSerializer,
            **errors(
                400,
                409,
                422,
                e409="Refused (`refused`), e.g. the email address is not verified yet.",
                **{
                    **IDEMPOTENCY_ERRORS,
                    "e400": "Invalid input (`invalid`), the selfie was refused "
                    "(`upload_refused`), or a bad Idempotency-Key (`idempotency_key_invalid`).",
                },
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = PassportCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        document: str = serializer.validated_data["document"]
        selfie = serializer.validated_data["selfie"]
        user = request_user(request)
        ip_address = client_ip(request._request)

        def run() -> tuple[int, dict[str, Any]]:
            # The refusal is answered (not raised) so that what it recorded (a malware
            # audit) commits with it, under an Idempotency-Key too.
            try:
                order = passport_order_start(
                    actor=user,
                    document=document,
                    selfie=selfie,
                    filename=selfie.name,
                    ip_address=ip_address,
                )
            except UploadRefused as exc:
                return 400, error_body("upload_refused", exc.message)
            return 201, order_body(request, order.reference)

        fingerprint = [{"document": document}, {"selfie_sha256": _sha256(selfie)}]
        return keyed_create(request, scope="passport.create", body=fingerprint, run=run)


class PassportPreviewView(APIView):
    @extend_schema(
        operation_id="passport_orders_preview",
        tags=TAGS,
        summary="The preview: processing, ready (with a signed link) or failed (with why)",
        responses={200: PassportPreviewSerializer},
    )
    def get(self, request: Request, reference: str) -> Response:
        order = _passport_order(request, reference)
        state = passport_preview_state(order=order)
        preview = result_links(request, order, [state.preview])[0] if state.preview else None
        data = {
            "reference": order.reference,
            "status": state.status,
            "reason": state.reason,
            "preview": preview,
        }
        return Response(PassportPreviewSerializer(data).data)


class PassportFilesView(APIView):
    @extend_schema(
        operation_id="passport_orders_files",
        tags=TAGS,
        summary="The final files (digital and print sheet), once paid",
        responses={
            200: PassportFilesSerializer,
            **errors(409, e409="Not paid yet (`not_ready`): submit and pay first."),
        },
    )
    def get(self, request: Request, reference: str) -> Response:
        order = _passport_order(request, reference)
        if order.status not in PAID_STATUSES:
            raise ApiError(
                "The files are available once the order is paid.",
                code="not_ready",
                status_code=409,
            )
        files = results_for_customer(order=order, kinds=PAID_KINDS)
        data = {"reference": order.reference, "files": result_links(request, order, files)}
        return Response(PassportFilesSerializer(data).data)
