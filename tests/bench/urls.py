"""The site's URLs plus the bench baselines: views that do no work of their own.

/__bench__/bare/ is plain Django. /__bench__/bare-api/ is DRF with no authentication,
permission or throttle, answering from memory the JSON body the harness captured once
from the real endpoint (file named by BENCH_API_BODY); /__bench__/bare-api-auth/ is the
same with the API's default authentication, permission and throttles.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import handler400, handler403, handler404, handler500

BARE_BODY = b"ok\n"


def bare(request: HttpRequest) -> HttpResponse:
    """A small response and no database: what Django plus the middleware cost alone."""
    return HttpResponse(BARE_BODY, content_type="text/plain")


@functools.cache
def _captured_body(source: str) -> Any:
    # Read once per worker; a failed read is not cached, so it is retried.
    with open(source, "rb") as fh:
        return json.loads(fh.read())


class _CapturedBody(APIView):
    def get(self, request: Request) -> Response:
        source = os.environ.get("BENCH_API_BODY", "")
        if not source or not os.path.exists(source):
            raise NotFound("no captured body yet")
        return Response(_captured_body(source))


class BareApi(_CapturedBody):
    """DRF alone: content negotiation, the JSON renderer and the middleware."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()


class BareApiAuth(_CapturedBody):
    """The same, paying the API's default token/session auth, permission and throttles."""


urlpatterns = [
    path("__bench__/bare/", bare, name="bench_bare"),
    path("__bench__/bare-api/", BareApi.as_view(), name="bench_bare_api"),
    path("__bench__/bare-api-auth/", BareApiAuth.as_view(), name="bench_bare_api_auth"),
    path("", include("config.urls")),
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
