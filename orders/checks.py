"""Deploy checks: the Stripe gateway needs its keys (ORD-2)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def gateway_configured(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.PAYMENT_GATEWAY != "stripe":
        return []
    missing = [
        n for n in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET") if not getattr(settings, n)
    ]
    if not missing:
        return []
    return [
        checks.Warning(
            f"PAYMENT_GATEWAY is stripe but {', '.join(missing)} is not set: "
            "customers cannot pay and webhooks are refused.",
            id="orders.W001",
        )
    ]
