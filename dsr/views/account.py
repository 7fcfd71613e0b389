"""The account's privacy requests page, one ticket's page, and "Close my account"."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def requests_list(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError


def ticket_detail(request: HttpRequest, reference: str) -> HttpResponse:
    raise NotImplementedError


def close_account(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError
