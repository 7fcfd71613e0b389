"""Privacy requests over the API (DSR-1, DSR-2): the account page's and the public form's
services, with the same rules; the public calls never tell whether an address has an account.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api.authentication import request_user
from common.api.errors import ApiError, domain_error
from common.api.pagination import NewestFirstCursor
from common.api.schema import errors
from common.api.throttles import DsrThrottle, VerifyThrottle, throttles
from common.http import client_ip
from dsr.api.serializers import (
    CodeInSerializer,
    ExportLinkSerializer,
    MessageSerializer,
    PublicAcceptedSerializer,
    PublicRequestInSerializer,
    PublicVerifiedSerializer,
    RequestCreatedSerializer,
    RequestDetailSerializer,
    RequestInSerializer,
    RequestSerializer,
)
from dsr.models import EXPORT_TYPES, Channel, Ticket, TicketEventKind, TicketStatus
from dsr.selectors import (
    export_archive_for_ticket,
    ticket_events_for_subject,
    ticket_get_for_user,
    tickets_for_user,
)
from dsr.services.challenges import ChallengeFailed, challenge_answered
from dsr.services.export import (
    DownloadRefused,
    export_archive_check,
    export_archive_url,
    export_download_record,
    export_download_url,
)
from dsr.services.intake import (
    IntakeThrottled,
    dsr_public_resend,
    dsr_public_verify,
    dsr_request_from_account,
    dsr_request_public,
    public_ticket_from_token,
)
from dsr.services.tickets import TicketRefused, ticket_days_left
from dsr.views.account import SUBJECT_EVENTS
from images.services.access import signed_url

TAGS = ["privacy-requests"]

# A refusal by the rules (an export less than 24 h ago, a staff account's erasure, ...).
domain_error(TicketRefused, status_code=409, code="refused")

# The public form's answer whatever the address's history: a merge into an earlier open
# request, or a refusal told by email, must not show here (DSR-1).
PUBLIC_SENT = (
    "If the address is right, a 6-digit code is on its way to it. Enter it to confirm the "
    "request; nothing happens until then."
)
RESENT = "We sent a new code. The earlier code no longer works."
VERIFIED = "Thank you: your email address is confirmed, and your request is being handled."


class _Limited(ApiError):
    """A service's own limit (per address, per network): 429 with its message and Retry-After.

    ``wait`` is a hint: the per-address limit passes within a minute; the per-network one
    may take longer, and the service's message says so.
    """

    wait = 60


@contextmanager
def _service_limits() -> Iterator[None]:
    try:
        yield
    except IntakeThrottled as exc:
        raise _Limited(exc.message, code="throttled", status_code=429) from exc


class RequestsCursor(NewestFirstCursor):
    ordering = ("-received_at", "-id")


# --- The account's requests ------------------------------------------------------------------
class RequestListCreateView(generics.ListAPIView[Ticket]):
    serializer_class = RequestSerializer
    pagination_class = RequestsCursor
    throttle_classes = throttles(DsrThrottle)  # DsrThrottle counts the POST only

    def get_queryset(self) -> QuerySet[Ticket]:
        return tickets_for_user(user=request_user(self.request))

    @extend_schema(
        operation_id="privacy_requests_list",
        tags=TAGS,
        summary="My privacy requests, newest first",
        responses={200: RequestSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="privacy_requests_create",
        tags=TAGS,
        summary="Make a privacy request (DSR-1)",
        description="The account page's request: identified by the sign-in, so it starts at "
        "once. A request of a kind already open is added to that one (200, `merged`: true); "
        "otherwise 201. `request.due_on` is the legal due date (DSR-2).",
        request=RequestInSerializer,
        responses={
            201: OpenApiResponse(RequestCreatedSerializer, description="A new request."),
            200: OpenApiResponse(
                RequestCreatedSerializer, description="Merged into an open request of its kind."
            ),
            **errors(
                409,
                e409="`refused`: the rules refuse it as asked (e.g. an export less than 24 "
                "hours after the last one; a staff account's erasure).",
            ),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _valid(RequestInSerializer, request)
        with _service_limits():
            intake = dsr_request_from_account(
                user=request_user(request),
                type=data["type"],
                jurisdiction=data["jurisdiction"],
                details=data["details"],
                direct_marketing=data["direct_marketing"],
                channel=Channel.API,
            )
        body = RequestCreatedSerializer(
            {"merged": not intake.created, "message": intake.message, "request": intake.ticket}
        ).data
        return Response(body, status=status.HTTP_201_CREATED if intake.created else 200)


def _valid(serializer_class: Any, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _history(ticket: Ticket) -> list[dict[str, Any]]:
    rows = []
    for event in ticket_events_for_subject(ticket=ticket, kinds=SUBJECT_EVENTS):
        summary = event.get_kind_display()
        to_status = event.to_status if event.kind == TicketEventKind.TRANSITION else ""
        if to_status:
            summary = f"Status: {TicketStatus(to_status).label.lower()}"
        rows.append(
            {
                "created_at": event.created_at,
                "kind": event.kind,
                "summary": summary,
                "to_status": to_status or None,
            }
        )
    return rows


def _detail(ticket: Ticket) -> dict[str, Any]:
    return {
        **RequestSerializer(ticket).data,
        "days_left": ticket_days_left(ticket) if ticket.is_open else None,
        "extension_reason": ticket.extension_reason or None,
        "not_before": ticket.not_before if ticket.is_open else None,
        "details": ticket.details,
        "outcome_note": ticket.outcome_note,
        "rejection_reason": ticket.rejection_reason or None,
        "rejection_text": ticket.rejection_text,
        "history": _history(ticket),
    }


class RequestDetailView(APIView):
    @extend_schema(
        operation_id="privacy_requests_retrieve",
        tags=TAGS,
        summary="One of my privacy requests, with its history",
        description="Status, due dates (with an extension and its reason, DSR-2) and the "
        "history the request's page shows; staff notes are never included.",
        responses={200: RequestDetailSerializer},
    )
    def get(self, request: Request, reference: str) -> Response:
        ticket = ticket_get_for_user(user=request_user(request), reference=reference)
        return Response(RequestDetailSerializer(_detail(ticket)).data)


class RequestExportView(APIView):
    @extend_schema(
        operation_id="privacy_requests_export",
        tags=TAGS,
        summary="The download link of an access or portability request's archive",
        description="`download_url` works for a few minutes for whoever holds it (no "
        "session or token needed), so an app can hand it to any HTTP client; each call is "
        "recorded as a download. `url` is the link the email gives (for a signed-in "
        "browser). 404 for a request that has no archive (not access or portability).",
        responses={
            200: ExportLinkSerializer,
            **errors(
                409,
                e409="`not_ready`: the archive is still being built; `expired`: it was "
                "deleted after its time (ask for a new export).",
            ),
        },
    )
    def get(self, request: Request, reference: str) -> Response:
        ticket = ticket_get_for_user(user=request_user(request), reference=reference)
        if ticket.type not in EXPORT_TYPES:
            raise Http404("This request has no archive.")
        archive = export_archive_for_ticket(ticket=ticket)
        now = timezone.now()
        try:
            if archive is None:
                raise DownloadRefused("This archive is not ready yet.", status=404)
            export_archive_check(archive=archive, now=now)
        except DownloadRefused as exc:
            # Both are states of the request, not a missing object: 409 with the reason.
            code = "expired" if exc.status == 410 else "not_ready"
            raise ApiError(exc.message, code=code, status_code=409) from exc
        link_ends = now + timedelta(days=settings.DSR_EXPORT_DAYS)
        # Handing out a working link is handing out the data: recorded as the web's
        # download is (audit row, ticket history, counter).
        download = export_download_record(
            archive=archive, actor=request_user(request), ip_address=client_ip(request._request)
        )
        direct = export_archive_url(download=download) or request.build_absolute_uri(
            signed_url(
                name=download.name,
                filename=download.filename,
                content_type="application/zip",
                download=True,
            )
        )
        body = {
            "download_url": direct,
            "download_expires_at": now + timedelta(seconds=settings.SIGNED_URL_MAX_AGE),
            "url": export_download_url(ticket=ticket),
            "expires_at": min(archive.expires_at or link_ends, link_ends),
            "size": archive.size,
            "sha256": archive.sha256,
        }
        return Response(ExportLinkSerializer(body).data)


# --- Public requests (no account) -----------------------------------------------------------
def _public_ticket(token: str) -> Ticket:
    try:
        return public_ticket_from_token(token)
    except TicketRefused as exc:
        # A forged, stale or unknown token names nothing.
        raise ApiError(exc.message, code="not_found", status_code=404) from exc


def _verified(ticket: Ticket) -> Response:
    body = {
        "reference": ticket.reference,
        "type": ticket.type,
        "status": ticket.status,
        "jurisdiction": ticket.jurisdiction,
        "received_at": ticket.received_at,
        "due_on": ticket.due_on if ticket.is_open else None,
        "message": VERIFIED,
    }
    return Response(PublicVerifiedSerializer(body).data)


class PublicRequestView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = throttles(DsrThrottle)

    @extend_schema(
        operation_id="privacy_requests_public_create",
        tags=TAGS,
        summary="Make a privacy request without an account (DSR-1)",
        description="A 6-digit code goes to the address; the request waits for it (verify). "
        "The answer is the same whether or not the address has an account or other requests.",
        request=PublicRequestInSerializer,
        responses={202: PublicAcceptedSerializer},
    )
    def post(self, request: Request) -> Response:
        data = _valid(PublicRequestInSerializer, request)
        with _service_limits():
            _intake, token = dsr_request_public(
                email=data["email"],
                type=data["type"],
                jurisdiction=data["jurisdiction"],
                details=data["details"],
                direct_marketing=data["direct_marketing"],
                ip_address=client_ip(request._request),
            )
        body = PublicAcceptedSerializer({"token": token, "message": PUBLIC_SENT}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class PublicVerifyView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = throttles(VerifyThrottle)

    @extend_schema(
        operation_id="privacy_requests_public_verify",
        tags=TAGS,
        summary="Confirm a public request with the code from the email",
        description="A wrong code answers 400 `wrong_code` with the tries left; after the "
        "last try the code is locked (409 `code_locked`): ask for a new one (resend).",
        request=CodeInSerializer,
        responses={
            200: PublicVerifiedSerializer,
            **errors(
                400,
                409,
                e400="`invalid` (no code), or `wrong_code`: not right, expired or replaced; "
                "the message says how many tries are left.",
                e409="`code_locked`: too many wrong codes; ask for a new code (resend).",
            ),
        },
    )
    def post(self, request: Request, token: str) -> Response:
        ticket = _public_ticket(token)
        if challenge_answered(ticket=ticket, purpose="verify"):
            # Only once its newest code was entered: nothing about earlier requests shows.
            return _verified(ticket)
        data = _valid(CodeInSerializer, request)
        try:
            ticket = dsr_public_verify(token=token, code=data["code"])
        except ChallengeFailed as exc:
            if exc.locked:
                raise ApiError(exc.message, code="code_locked", status_code=409) from exc
            raise ApiError(exc.message, code="wrong_code", status_code=400) from exc
        except TicketRefused as exc:
            raise ApiError(exc.message, code="not_found", status_code=404) from exc
        return _verified(ticket)


class PublicResendView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = throttles(VerifyThrottle)

    @extend_schema(
        operation_id="privacy_requests_public_resend",
        tags=TAGS,
        summary="Send a new code for a public request",
        description="The earlier code and link stop working. One code per address a minute.",
        request=None,
        responses={
            202: MessageSerializer,
            **errors(409, e409="`already_verified`: the request is confirmed already."),
        },
    )
    def post(self, request: Request, token: str) -> Response:
        ticket = _public_ticket(token)
        if challenge_answered(ticket=ticket, purpose="verify"):
            raise ApiError(
                "This request is confirmed already.", code="already_verified", status_code=409
            )
        with _service_limits():
            dsr_public_resend(token=token, ip_address=client_ip(request._request))
        return Response(MessageSerializer({"message": RESENT}).data, status=202)
