"""Deploy checks: uploads must be scanned in production (IMG-5)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def scanner_configured(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.CLAMD_ADDRESS:
        return []
    return [
        checks.Warning(
            "No malware scanner is configured: uploads are stored as 'not scanned'.",
            hint="Set CLAMD_ADDRESS to clamd's host:port or unix socket path (IMG-5).",
            id="images.W001",
        )
    ]
