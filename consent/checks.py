"""Deploy checks: what marketing email and the published policy need (CON-1, TRN-1)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def seller_address_configured(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if not settings.SELLER_ADDRESS.strip():
        messages.append(
            checks.Warning(
                "SELLER_ADDRESS is empty: marketing email refuses to send without the "
                "sender's postal address, and invoices lack it.",
                hint="Set SELLER_ADDRESS to the company's postal address (CON-1, ORD-4).",
                id="consent.W001",
            )
        )
    if not settings.SITE_URL.startswith("https://"):
        messages.append(
            checks.Warning(
                "SITE_URL is not https: unsubscribe links (RFC 8058) and every emailed link "
                "must be https in production.",
                hint="Set SITE_URL to the site's public https:// address.",
                id="consent.W002",
            )
        )
    return messages
