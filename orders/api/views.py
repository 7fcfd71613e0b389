"""Orders over the API: thin views over the services the order pages call (ORD-1..ORD-3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api.authentication import request_user
from common.api.errors import ApiError, domain_error
from common.api.pagination import NewestFirstCursor
from common.api.schema import errors
from common.http import client_ip
from orders.api.idempotency import (
    IDEMPOTENCY_ERRORS,
    IDEMPOTENCY_PARAMETER,
    json_body,
    keyed_create,
)
from orders.api.serializers import (
    LIST_FIELDS,
    OrderDetailSerializer,
    OrderListItemSerializer,
    PaymentStartSerializer,
    RetouchCreateSerializer,
    RevisionSerializer,
)
from orders.gateways.base import GatewayRequestInvalid, GatewayUnavailable
from orders.models import Order
from orders.selectors import order_get_for_viewer, order_list_for_customer
from orders.services import (
    TransitionRefused,
    order_accept,
    order_cancel,
    order_create_retouch,
    order_request_revision,
    order_submit,
    payment_start,
)

# The services' refusals carry a message meant for the customer: shown as is.
domain_error(TransitionRefused, status_code=409, code="refused")

TAGS = ["orders"]
E409 = "Refused by the order's current state (`refused`), e.g. not a draft any more."


def order_for(request: Request, reference: str) -> Order:
    """The caller's own order with photos, results, events and invoices; 404 otherwise."""
    return order_get_for_viewer(user=request.user, reference=reference)


def order_body(request: Request, reference: str) -> dict[str, Any]:
    return json_body(OrderDetailSerializer(order_for(request, reference)).data)


class OrderListCreateView(generics.ListCreateAPIView[Order]):
    serializer_class = OrderListItemSerializer
    pagination_class = NewestFirstCursor

    def get_queryset(self) -> QuerySet[Order]:
        # Rows as dicts of the listed columns: no model instances to build per order.
        return order_list_for_customer(user=self.request.user).values(*LIST_FIELDS)

    @extend_schema(
        operation_id="orders_list",
        tags=TAGS,
        summary="Your orders, newest first",
        description="Cursor-paginated: follow `next` as given.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="orders_create_retouch",
        tags=TAGS,
        summary="Start a retouching order (a draft: add photos next)",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=RetouchCreateSerializer,
        responses={
            201: OrderDetailSerializer,
            **errors(
                400,
                409,
                422,
                e409="Refused (`refused`), e.g. the email address is not verified yet.",
                **IDEMPOTENCY_ERRORS,
            ),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = RetouchCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instructions = serializer.validated_data["instructions"]

        def run() -> tuple[int, dict[str, Any]]:
            order = order_create_retouch(actor=request_user(request), instructions=instructions)
            return 201, order_body(request, order.reference)

        return keyed_create(
            request, scope="orders.create", body=[serializer.validated_data], run=run
        )


class OrderDetailView(APIView):
    @extend_schema(
        operation_id="orders_retrieve",
        tags=TAGS,
        summary="One order: photos, visible results, history, invoices, actions",
        responses={200: OrderDetailSerializer},
    )
    def get(self, request: Request, reference: str) -> Response:
        return Response(order_body(request, reference))


def _act(request: Request, order: Order, action: Callable[..., Any], **kwargs: Any) -> Response:
    action(
        actor=request_user(request), order=order, ip_address=client_ip(request._request), **kwargs
    )
    return Response(order_body(request, order.reference))


def _action_schema(operation_id: str, summary: str, **extra: Any) -> Callable[..., Any]:
    return extend_schema(
        operation_id=operation_id,
        tags=TAGS,
        summary=summary,
        request=extra.pop("request", None),
        responses={200: OrderDetailSerializer, **errors(409, e409=E409)},
        **extra,
    )


class OrderSubmitView(APIView):
    @_action_schema("orders_submit", "Submit: fix the price and wait for payment")
    def post(self, request: Request, reference: str) -> Response:
        return _act(request, order_for(request, reference), order_submit)


class OrderCancelView(APIView):
    @_action_schema("orders_cancel", "Cancel a draft or unpaid order")
    def post(self, request: Request, reference: str) -> Response:
        return _act(request, order_for(request, reference), order_cancel)


class OrderAcceptView(APIView):
    @_action_schema("orders_accept", "Accept the results (the order is delivered)")
    def post(self, request: Request, reference: str) -> Response:
        return _act(request, order_for(request, reference), order_accept)


class OrderRevisionView(APIView):
    @_action_schema(
        "orders_revision", "Ask the retoucher for a revision", request=RevisionSerializer
    )
    def post(self, request: Request, reference: str) -> Response:
        # Another customer's order is 404 whatever the body: looked up before judging it.
        order = order_for(request, reference)
        serializer = RevisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = serializer.validated_data["comment"]
        return _act(request, order, order_request_revision, comment=comment)


class OrderPayView(APIView):
    @extend_schema(
        operation_id="orders_pay",
        tags=TAGS,
        summary="Start paying a submitted order: where to send the customer",
        request=None,
        responses={
            200: PaymentStartSerializer,
            **errors(
                400,
                409,
                503,
                e400="The payment provider refused the request (`payment_request_invalid`).",
                e409="The order is not waiting for payment (`refused`).",
                e503="The payment provider cannot be reached; try again soon "
                "(`payment_unavailable`).",
            ),
        },
    )
    def post(self, request: Request, reference: str) -> Response:
        order = order_for(request, reference)
        try:
            url = payment_start(actor=request_user(request), order=order)
        except GatewayRequestInvalid as exc:
            raise ApiError(
                f"The payment provider refused the request: {exc}",
                code="payment_request_invalid",
                status_code=400,
            ) from exc
        except GatewayUnavailable as exc:
            raise ApiError(
                "The payment provider cannot be reached right now. Please try again soon.",
                code="payment_unavailable",
                status_code=503,
            ) from exc
        data = PaymentStartSerializer({"payment_url": request.build_absolute_uri(url)}).data
        return Response(data)
