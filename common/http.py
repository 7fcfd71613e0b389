"""Where a request comes from, decided once for the whole site (axes, audit, logs)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client address.

    Behind a proxy, only a header that the proxy *overwrites* is trustworthy
    (CLIENT_IP_HEADER, e.g. HTTP_X_REAL_IP). X-Forwarded-For is never read: a client
    can prepend anything to it, which would let an attacker rotate addresses to escape
    a lockout, or borrow a victim's address to lock the victim out.
    """
    header = settings.CLIENT_IP_HEADER
    raw = request.META.get(header) if header else request.META.get("REMOTE_ADDR")
    if not raw:
        return None
    candidate = str(raw).strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def user_agent(request: HttpRequest, limit: int = 300) -> str:
    """The User-Agent header, printable characters only, cut to *limit* (evidence, not parsing)."""
    raw = str(request.META.get("HTTP_USER_AGENT", ""))
    return "".join(ch for ch in raw if ch.isprintable())[:limit]


@dataclass(frozen=True)
class RequestMeta:
    """Where an action came from: kept with consent evidence and form submissions (LOG-1)."""

    ip_address: str | None = None
    user_agent: str = ""

    @classmethod
    def of(cls, request: HttpRequest | None) -> RequestMeta:
        if request is None:
            return cls()
        return cls(ip_address=client_ip(request), user_agent=user_agent(request))


if TYPE_CHECKING:
    from accounts.models import User

    class AuthedRequest(HttpRequest):
        """A request behind login_required: request.user is a real User."""

        user: User
else:
    AuthedRequest = HttpRequest
