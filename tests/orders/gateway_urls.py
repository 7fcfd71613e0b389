"""A stand-in URLconf with just the test gateway's payment page, named as the real one.

Lets the gateway adapter tests reverse orders:test_gateway_pay without depending on the
orders app's own URLs.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def _pay(request: HttpRequest, reference: str) -> HttpResponse:
    return HttpResponse(reference)


urlpatterns = [
    path(
        "pay/",
        include(([path("test/<str:reference>/", _pay, name="test_gateway_pay")], "orders")),
    ),
]
