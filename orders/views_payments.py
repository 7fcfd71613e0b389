"""Payment endpoints: gateway webhooks and the offline test gateway's payment page (ORD-2)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from orders.gateways.base import GatewayOutcome, WebhookRejected
from orders.models import Payment
from orders.services import payment_webhook_receive

logger = logging.getLogger(__name__)


@csrf_exempt  # the gateway's signature authenticates the call, not a browser cookie
@require_POST
def gateway_webhook(request: HttpRequest, gateway: str) -> HttpResponse:
    if gateway != settings.PAYMENT_GATEWAY:  # only the configured gateway's endpoint exists
        raise Http404
    try:
        outcome = payment_webhook_receive(
            gateway_name=gateway, payload=request.body, headers=request.headers
        )
    except WebhookRejected as exc:
        logger.warning("webhook from %s rejected: %s", gateway, exc)
        return HttpResponse(f"Rejected: {exc}", status=400, content_type="text/plain")
    return HttpResponse(outcome, content_type="text/plain")


@require_http_methods(["GET", "POST"])
def test_gateway_pay(request: HttpRequest, reference: str) -> HttpResponse:
    """The test gateway's 'hosted page': pay or fail, without any card (dev and demos)."""
    if settings.PAYMENT_GATEWAY != "test":
        raise Http404
    payment = get_object_or_404(
        Payment.objects.select_related("order"), gateway="test", reference=reference
    )
    if request.method == "POST":
        from orders.gateways.testgateway import test_event_sign

        outcome = (
            GatewayOutcome.SUCCEEDED
            if request.POST.get("result") == "pay"
            else GatewayOutcome.FAILED
        )
        payload, headers = test_event_sign(
            reference=payment.reference,
            order_ref=payment.order.reference,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            outcome=outcome,
        )
        # The same path a real gateway's webhook takes: verified, recorded once, applied.
        payment_webhook_receive(gateway_name="test", payload=payload, headers=headers)
        return redirect("orders:paid", payment.order.reference)
    return render(request, "orders/test_gateway.html", {"payment": payment})
