"""Template context of the dsr app: the breach notice banner on every page (BRE-1)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from dsr.models import BreachNotice


def _notice(request: HttpRequest) -> BreachNotice | None:
    from dsr.services.breach_notify import breach_notice_unacknowledged

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    # One probe of a partial index (unacknowledged notices only): cheap on every page.
    return breach_notice_unacknowledged(user=user)


def breach_notice(request: HttpRequest) -> dict[str, Any]:
    # Lazy: evaluated only when a page renders templates/dsr/_breach_banner.html.
    return {"breach_notice": SimpleLazyObject(lambda: _notice(request))}
