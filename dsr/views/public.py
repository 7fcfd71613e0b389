"""The public request form for non-users and guests, verified by a code sent by email."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def public_request(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError


def public_verify(request: HttpRequest, token: str) -> HttpResponse:
    raise NotImplementedError


def public_verify_link(request: HttpRequest, token: str) -> HttpResponse:
    raise NotImplementedError
