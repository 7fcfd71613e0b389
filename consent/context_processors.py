"""Template context of the consent app: the privacy policy notice on every page (CON-5)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from consent.services.policy import PolicyNotice, policy_notice_for_user, policy_notice_for_visitor


def _notice(request: HttpRequest) -> PolicyNotice | None:
    from consent.views.policy import policy_seen

    seen = policy_seen(request)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return policy_notice_for_user(user=user, seen=seen)  # one small query
    return policy_notice_for_visitor(seen=seen)  # cached: no query while no notice is active


def policy_notice(request: HttpRequest) -> dict[str, Any]:
    # Lazy: evaluated only when a page renders templates/consent/_policy_notice.html.
    return {"policy_notice": SimpleLazyObject(lambda: _notice(request))}
