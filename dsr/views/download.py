"""Export archive downloads: the subject's login or a code sent to their email, 7 days."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def archive_download(request: HttpRequest, token: str) -> HttpResponse:
    raise NotImplementedError
