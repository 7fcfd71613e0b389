"""Shared by the image tests: a draft order through the web view, and what storage holds."""

from __future__ import annotations

from pathlib import Path

from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from orders.models import Order


def media_files() -> list[str]:
    """Every file under the (per-test) media root, as paths relative to it."""
    root = Path(default_storage.location)
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def new_draft_order(client: Client) -> Order:
    response = client.post(reverse("orders:retouch_new"), {"instructions": "Brighten, please"})
    assert response.status_code == 302, response.content[:500]
    return Order.objects.latest("id")
