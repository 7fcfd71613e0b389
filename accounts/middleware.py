from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from accounts.services.requestlog import capture, request_log_enqueue

logger = logging.getLogger(__name__)


class RequestLogMiddleware:
    """Record every request (LOG-1). Logging never breaks or fails the request itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        try:
            request_log_enqueue(capture(request, response))
        except Exception:
            logger.exception("could not record a request-log line")
        return response
