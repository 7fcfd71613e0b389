"""The API access matrix: for every operation, how to build the owner's object and a valid
request, and the status each persona must get.

Every object a request names belongs to the owner (the ``customer`` fixture); the other
personas send the same request with their own token. The API is customer-scoped for
everyone, staff included: their lists are their own and a customer's object is a 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core import mail
from django.test import TestCase
from django.utils import timezone

from accounts.models import ApiToken, Notification, User
from consent.models import PolicyStatus, PolicyVersion
from dsr.models import ArchiveStatus, RequestType, Ticket
from dsr.services.intake import dsr_request_from_account, dsr_request_public
from images.models import Photo, Result, ResultKind
from orders.models import Order, OrderKind, OrderStatus
from tests.api.orders_helpers import jpeg
from tests.factories import PASSWORD

ANONYMOUS = "anonymous"
OWNER = "owner"
OTHERS = ("other_customer", "support", "retoucher", "privacy_officer")
PERSONAS = (ANONYMOUS, OWNER, *OTHERS)

V1 = "/api/v1"


@dataclass(frozen=True)
class Ctx:
    """What a builder may use: the owner, who asks (None: anonymous), the settings fixture."""

    owner: User
    actor: User | None
    settings: Any


@dataclass(frozen=True)
class Call:
    """One request. *markers*: strings of the owner's data that no one else may see."""

    url: str
    data: Any = None
    format: str = "json"
    markers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    operation_id: str
    method: str
    path: str  # the schema's path template
    build: Callable[[Ctx], Call]
    expect: dict[str, int]
    # The owner's response shows the markers (a list or the profile): checked both ways.
    lists_owner_data: bool = False
    notes: str = field(default="", compare=False)


def scoped(ok: int) -> dict[str, int]:
    """The owner's object: only the owner gets *ok*; everyone else signed in gets 404."""
    return {ANONYMOUS: 401, OWNER: ok, **dict.fromkeys(OTHERS, 404)}


def own(ok: int) -> dict[str, int]:
    """Acts on the caller's own data (a list, a create, the profile): anyone signed in."""
    return {ANONYMOUS: 401, OWNER: ok, **dict.fromkeys(OTHERS, ok)}


def public(ok: int) -> dict[str, int]:
    return dict.fromkeys(PERSONAS, ok)


# --- Owner's objects ---------------------------------------------------------------------------
def order(owner: User, status: str = OrderStatus.DRAFT, **kwargs: Any) -> Order:
    kwargs.setdefault("kind", OrderKind.RETOUCH)
    if kwargs["kind"] == OrderKind.PASSPORT:
        kwargs.setdefault("document", "us_passport")
    return Order.objects.create(
        customer=owner, status=status, instructions="Owner's private wish", **kwargs
    )


def photo(on: Order) -> Photo:
    return Photo.objects.create(order=on, scan="clean")


def result(on: Order, n: int = 0, kind: str = ResultKind.RETOUCHED) -> Result:
    return Result.objects.create(
        order=on,
        kind=kind,
        round=0,
        file=f"results/{on.reference}-{n}.jpg",
        width=300,
        height=400,
        size_bytes=1000,
    )


def notification(owner: User) -> Notification:
    return Notification.objects.create(user=owner, title=f"Owner notice {owner.pk}")


def published_policy() -> PolicyVersion:
    when = timezone.now() - timedelta(days=3)
    return PolicyVersion.objects.create(
        number=1,
        status=PolicyStatus.PUBLISHED,
        effective_at=when,
        published_at=when,
        summary="First version",
        body="We keep little.",
    )


def ticket(owner: User, type: str = RequestType.AUTOMATED) -> Ticket:
    return dsr_request_from_account(user=owner, type=type).ticket


def export_ticket(owner: User) -> Ticket:
    # The export task runs on commit: run it now, so the archive is ready.
    with TestCase.captureOnCommitCallbacks(execute=True):
        made = ticket(owner, RequestType.ACCESS)
    assert made.archive.status == ArchiveStatus.READY
    return made


def public_request() -> tuple[str, str]:
    """A request from the public form (no account): its token and the emailed code."""
    email = "walk-in@example.com"
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        _intake, token = dsr_request_public(
            email=email,
            type=RequestType.AUTOMATED,
            jurisdiction="gdpr",
            details="",
            direct_marketing=False,
            ip_address="198.51.100.9",
        )
    for message in reversed(mail.outbox):
        if email in message.to:
            found = re.search(r"^\s+(\d{6})\s*$", message.body, re.M)
            if found:
                return token, found.group(1)
    raise AssertionError("no code email")


# --- Builders ----------------------------------------------------------------------------------
def _tokens_list(ctx: Ctx) -> Call:
    row, _secret = ApiToken.objects.create(user=ctx.owner, name="owner laptop")
    return Call(f"{V1}/auth/tokens/", markers=(row.token_key,))


def _tokens_create(ctx: Ctx) -> Call:
    # Signing in is proved by the body alone: whoever's token is on the request.
    return Call(f"{V1}/auth/tokens/", {"email": ctx.owner.email, "password": PASSWORD})


def _tokens_revoke(ctx: Ctx) -> Call:
    row, _secret = ApiToken.objects.create(user=ctx.owner, name="spare")
    return Call(f"{V1}/auth/tokens/{row.token_key}/")


def _me(ctx: Ctx) -> Call:
    return Call(f"{V1}/me/", markers=(ctx.owner.email,))


def _me_update(ctx: Ctx) -> Call:
    return Call(f"{V1}/me/", {"city": "Cork"}, markers=(ctx.owner.email,))


def _notifications(ctx: Ctx) -> Call:
    note = notification(ctx.owner)
    return Call(f"{V1}/me/notifications/", markers=(note.title,))


def _notification_read(ctx: Ctx) -> Call:
    note = notification(ctx.owner)
    return Call(f"{V1}/me/notifications/{note.pk}/read/", markers=(note.title,))


def _plain(path: str, data: Any = None) -> Callable[[Ctx], Call]:
    return lambda ctx: Call(f"{V1}{path}", data)


def _policy(path: str) -> Callable[[Ctx], Call]:
    def build(ctx: Ctx) -> Call:
        published_policy()
        return Call(f"{V1}{path}")

    return build


def _requests_list(ctx: Ctx) -> Call:
    return Call(f"{V1}/privacy/requests/", markers=(ticket(ctx.owner).reference,))


def _request_detail(ctx: Ctx) -> Call:
    made = ticket(ctx.owner)
    return Call(f"{V1}/privacy/requests/{made.reference}/", markers=(made.reference,))


def _request_export(ctx: Ctx) -> Call:
    made = export_ticket(ctx.owner)
    return Call(f"{V1}/privacy/requests/{made.reference}/export/", markers=(made.reference,))


def _public_create(ctx: Ctx) -> Call:
    who = ctx.actor.pk if ctx.actor else "anon"
    data = {"email": f"walk-in-{who}@example.com", "type": RequestType.AUTOMATED}
    return Call(f"{V1}/privacy/requests/public/", data)


def _public_verify(ctx: Ctx) -> Call:
    token, code = public_request()
    return Call(f"{V1}/privacy/requests/public/{token}/verify/", {"code": code})


def _public_resend(ctx: Ctx) -> Call:
    token, _code = public_request()
    # The service allows one code per address a minute: as if that minute had passed.
    ctx.settings.CACHE_PREFIX = f"{ctx.settings.CACHE_PREFIX}-later"
    return Call(f"{V1}/privacy/requests/public/{token}/resend/")


def _orders_list(ctx: Ctx) -> Call:
    return Call(f"{V1}/orders/", markers=(order(ctx.owner).reference,))


def _on_order(
    suffix: str, make: Callable[[User], Order], data: Any = None, fmt: str = "json"
) -> Callable[[Ctx], Call]:
    def build(ctx: Ctx) -> Call:
        made = make(ctx.owner)
        payload = data() if callable(data) else data  # a fresh file for each request
        return Call(f"{V1}/orders/{made.reference}/{suffix}", payload, fmt, (made.reference,))

    return build


def _draft_with_photo(owner: User) -> Order:
    made = order(owner)
    photo(made)
    return made


def _delivered_with_result(owner: User) -> Order:
    made = order(owner, OrderStatus.DELIVERED)
    result(made)
    return made


def _passport(suffix: str, status: str) -> Callable[[Ctx], Call]:
    def build(ctx: Ctx) -> Call:
        made = order(ctx.owner, status, kind=OrderKind.PASSPORT)
        return Call(f"{V1}/passport/orders/{made.reference}/{suffix}", markers=(made.reference,))

    return build


def _passport_create(ctx: Ctx) -> Call:
    data = {"document": "us_passport", "selfie": jpeg("selfie.jpg", 600)}
    return Call(f"{V1}/passport/orders/", data, "multipart")


MATRIX: tuple[Row, ...] = (
    # accounts: tokens
    Row("auth_tokens_list", "GET", "/auth/tokens/", _tokens_list, own(200), True),
    Row("auth_tokens_create", "POST", "/auth/tokens/", _tokens_create, public(201)),
    Row("auth_tokens_revoke", "DELETE", "/auth/tokens/{token_key}/", _tokens_revoke, scoped(204)),
    Row(
        "auth_tokens_revoke_current",
        "DELETE",
        "/auth/tokens/current/",
        _plain("/auth/tokens/current/"),
        own(204),
    ),
    # accounts: me, notifications
    Row("me_get", "GET", "/me/", _me, own(200), True),
    Row("me_update", "PATCH", "/me/", _me_update, own(200), True),
    Row("me_notifications_list", "GET", "/me/notifications/", _notifications, own(200), True),
    Row(
        "me_notifications_read",
        "POST",
        "/me/notifications/{notification_id}/read/",
        _notification_read,
        scoped(200),
        True,
    ),
    Row(
        "me_notifications_read_all",
        "POST",
        "/me/notifications/read-all/",
        _plain("/me/notifications/read-all/"),
        own(200),
    ),
    Row(
        "me_notifications_unread_count",
        "GET",
        "/me/notifications/unread-count/",
        _plain("/me/notifications/unread-count/"),
        own(200),
    ),
    # consent: a person's choices, the public policy and register
    Row("consents_list", "GET", "/consents/", _plain("/consents/"), own(200)),
    Row(
        "consents_grant",
        "POST",
        "/consents/{key}/grant/",
        _plain("/consents/marketing_email/grant/"),
        own(200),
    ),
    Row(
        "consents_withdraw",
        "POST",
        "/consents/{key}/withdraw/",
        _plain("/consents/marketing_email/withdraw/"),
        own(200),
    ),
    Row(
        "privacy_policy_current",
        "GET",
        "/privacy/policy/",
        _policy("/privacy/policy/"),
        public(200),
    ),
    Row(
        "privacy_policy_versions_list",
        "GET",
        "/privacy/policy/versions/",
        _policy("/privacy/policy/versions/"),
        public(200),
    ),
    Row(
        "privacy_policy_versions_get",
        "GET",
        "/privacy/policy/versions/{number}/",
        _policy("/privacy/policy/versions/1/"),
        public(200),
    ),
    Row("privacy_register", "GET", "/privacy/register/", _plain("/privacy/register/"), public(200)),
    # dsr: privacy requests
    Row("privacy_requests_list", "GET", "/privacy/requests/", _requests_list, own(200), True),
    Row(
        "privacy_requests_create",
        "POST",
        "/privacy/requests/",
        _plain("/privacy/requests/", {"type": RequestType.AUTOMATED}),
        own(201),
    ),
    Row(
        "privacy_requests_retrieve",
        "GET",
        "/privacy/requests/{reference}/",
        _request_detail,
        scoped(200),
        True,
    ),
    Row(
        "privacy_requests_export",
        "GET",
        "/privacy/requests/{reference}/export/",
        _request_export,
        scoped(200),
    ),
    Row(
        "privacy_requests_public_create",
        "POST",
        "/privacy/requests/public/",
        _public_create,
        public(202),
    ),
    Row(
        "privacy_requests_public_verify",
        "POST",
        "/privacy/requests/public/{token}/verify/",
        _public_verify,
        public(200),
        notes="The token and the emailed code are the capability: whoever holds both.",
    ),
    Row(
        "privacy_requests_public_resend",
        "POST",
        "/privacy/requests/public/{token}/resend/",
        _public_resend,
        public(202),
    ),
    # orders
    Row("orders_list", "GET", "/orders/", _orders_list, own(200), True),
    Row(
        "orders_create_retouch",
        "POST",
        "/orders/",
        _plain("/orders/", {"instructions": "Brighten, please"}),
        own(201),
    ),
    Row(
        "orders_retrieve",
        "GET",
        "/orders/{reference}/",
        _on_order("", order),
        scoped(200),
        True,
    ),
    Row(
        "orders_submit",
        "POST",
        "/orders/{reference}/submit/",
        _on_order("submit/", _draft_with_photo),
        scoped(200),
    ),
    Row(
        "orders_cancel",
        "POST",
        "/orders/{reference}/cancel/",
        _on_order("cancel/", order),
        scoped(200),
    ),
    Row(
        "orders_pay",
        "POST",
        "/orders/{reference}/pay/",
        _on_order("pay/", lambda u: order(u, OrderStatus.SUBMITTED, amount_minor=900)),
        scoped(200),
    ),
    Row(
        "orders_accept",
        "POST",
        "/orders/{reference}/accept/",
        _on_order("accept/", lambda u: order(u, OrderStatus.READY_FOR_REVIEW)),
        scoped(200),
    ),
    Row(
        "orders_revision",
        "POST",
        "/orders/{reference}/revision/",
        _on_order(
            "revision/",
            lambda u: order(u, OrderStatus.READY_FOR_REVIEW),
            {"comment": "Less contrast"},
        ),
        scoped(200),
    ),
    # images: photos and results of an order
    Row(
        "orders_photos_list",
        "GET",
        "/orders/{reference}/photos/",
        _on_order("photos/", _draft_with_photo),
        scoped(200),
    ),
    Row(
        "orders_photos_upload",
        "POST",
        "/orders/{reference}/photos/",
        _on_order(
            "photos/", order, lambda: {"photos": [jpeg("p.jpg", 400)], "note": ""}, "multipart"
        ),
        scoped(201),
    ),
    Row(
        "orders_results_list",
        "GET",
        "/orders/{reference}/results/",
        _on_order("results/", _delivered_with_result),
        scoped(200),
    ),
    # images: passport photos
    Row(
        "passport_documents_list",
        "GET",
        "/passport/documents/",
        _plain("/passport/documents/"),
        public(200),
    ),
    Row("passport_orders_create", "POST", "/passport/orders/", _passport_create, own(201)),
    Row(
        "passport_orders_preview",
        "GET",
        "/passport/orders/{reference}/preview/",
        _passport("preview/", OrderStatus.DRAFT),
        scoped(200),
        True,
    ),
    Row(
        "passport_orders_files",
        "GET",
        "/passport/orders/{reference}/files/",
        _passport("files/", OrderStatus.PAID),
        scoped(200),
        True,
    ),
)
