from __future__ import annotations

from django.test import RequestFactory

from common.http import client_ip


def test_client_ip_uses_remote_addr_without_proxy(settings) -> None:
    settings.CLIENT_IP_HEADER = ""
    request = RequestFactory().get(
        "/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.1"
    )
    assert client_ip(request) == "203.0.113.9"


def test_client_ip_reads_only_the_configured_proxy_header(settings) -> None:
    settings.CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    request = RequestFactory().get(
        "/",
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_REAL_IP="203.0.113.7",
        HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7",
    )
    assert client_ip(request) == "203.0.113.7"


def test_client_ip_rejects_garbage(settings) -> None:
    settings.CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    request = RequestFactory().get("/", HTTP_X_REAL_IP="not-an-ip<script>")
    assert client_ip(request) is None
