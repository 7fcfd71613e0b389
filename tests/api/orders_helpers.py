"""Shared by the order, photo and passport API tests: orders made and paid through the API."""

from __future__ import annotations

import io
import re
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from orders.models import Order
from tests.photos import selfie_jpeg


def jpeg(name: str = "me.jpg", side: int = 800) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, selfie_jpeg(side), content_type="image/jpeg")


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The one error shape, with *status* and *code*; returns the error body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return dict(body["error"])


def create_retouch(client: APIClient, instructions: str = "Brighten, please") -> str:
    response = client.post(reverse("api:orders-list"), {"instructions": instructions})
    assert response.status_code == 201, response.content[:500]
    return str(response.json()["reference"])


def upload(client: APIClient, reference: str, *files: Any, note: str = "") -> Any:
    return client.post(
        reverse("api:images-photos", args=[reference]),
        {"photos": list(files), "note": note},
        format="multipart",
    )


def retouch_with_photos(client: APIClient, photos: int = 1) -> str:
    reference = create_retouch(client)
    response = upload(client, reference, *[jpeg(f"p{i}.jpg") for i in range(photos)])
    assert response.status_code == 201, response.content[:500]
    return reference


def pay_through_test_gateway(client: APIClient, reference: str) -> None:
    """Start paying over the API, then do what a browser does on the test gateway's page."""
    response = client.post(reverse("api:orders-pay", args=[reference]))
    assert response.status_code == 200, response.content[:500]
    url = response.json()["payment_url"]
    assert "/orders/pay/test/" in url
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(url)
    assert page.status_code == 200
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    assert token is not None
    paid = browser.post(url, {"result": "pay", "csrfmiddlewaretoken": token.group(1).decode()})
    assert paid.status_code == 302, paid.status_code
    assert Order.objects.get(reference=reference).paid_at is not None


def download(url: str) -> bytes:
    """Fetch a signed link as anyone would: no token, no session."""
    response = APIClient().get(url)
    assert response.status_code == 200, response.status_code
    return b"".join(response.streaming_content)


def is_jpeg(data: bytes) -> bool:
    from PIL import Image

    return Image.open(io.BytesIO(data)).format == "JPEG"
