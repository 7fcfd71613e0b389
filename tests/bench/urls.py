"""The site's URLs plus /__bench__/bare/: a view that does no work, the baseline."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from config.urls import handler400, handler403, handler404, handler500

BARE_BODY = b"ok\n"


def bare(request: HttpRequest) -> HttpResponse:
    """A small response and no database: what Django plus the middleware cost alone."""
    return HttpResponse(BARE_BODY, content_type="text/plain")


urlpatterns = [
    path("__bench__/bare/", bare, name="bench_bare"),
    path("", include("config.urls")),
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
