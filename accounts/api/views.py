"""The signed-in person: profile (GET/PATCH /me/) and in-site notifications.

A profile change is validated by the web's ProfileForm and saved by user_update_profile,
the same path as "My profile"; the address is changed only on the web (verification).
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import (
    MarkedSerializer,
    MeSerializer,
    NotificationSerializer,
    UnreadCountSerializer,
)
from accounts.forms import ProfileForm
from accounts.models import PROFILE_FIELDS, Notification, User
from accounts.selectors import (
    notification_get_for_user,
    notification_list_for_user,
    notification_unread_count,
)
from accounts.services import notification_mark_all_read, notification_mark_read
from accounts.services.users import user_update_profile
from common.api.authentication import request_user
from common.api.errors import ApiError
from common.api.pagination import NewestFirstCursor
from common.http import client_ip

ME_TAGS = ["me"]
EMAIL_READ_ONLY = (
    "The email address is changed on the web (Security page): the new address must be "
    "confirmed with a link first."
)


def _profile_input(payload: Any) -> dict[str, str]:
    """The request's fields, refused when unknown or not text (the form takes the rest)."""
    if isinstance(payload, QueryDict):
        payload = payload.dict()  # a form-encoded body: one value per field
    if not isinstance(payload, dict):
        raise ApiError("Send a JSON object of profile fields.", code="invalid")
    problems: dict[str, list[str]] = {}
    for key, value in payload.items():
        if key == "email":
            problems[key] = [EMAIL_READ_ONLY]
        elif key not in PROFILE_FIELDS:
            problems[key] = ["Unknown field."]
        elif not isinstance(value, str):
            problems[key] = ["Must be text (an empty string clears an optional field)."]
    if problems:
        raise ValidationError(problems)
    return dict(payload)


def _current(user: User) -> dict[str, str]:
    values: dict[str, str] = {}
    for field in PROFILE_FIELDS:
        value = getattr(user, field)
        values[field] = str(value.code or "") if field == "country" else str(value or "")
    return values


class Me(APIView):
    @extend_schema(
        operation_id="me_get",
        tags=ME_TAGS,
        summary="Your profile",
        responses={200: MeSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request_user(request)).data)

    @extend_schema(
        operation_id="me_update",
        tags=ME_TAGS,
        summary="Change profile fields (the rules of the web profile form)",
        description=(
            "Send only the fields to change. Unknown fields, and `email`, are refused "
            "with 400: the address is changed on the web, after confirming the new one."
        ),
        request=MeSerializer,
        responses={200: MeSerializer},
    )
    def patch(self, request: Request) -> Response:
        user = request_user(request)
        changes = _profile_input(request.data)
        form = ProfileForm({**_current(user), **changes}, instance=user)
        valid = form.is_valid()
        # The ModelForm mutated *user* while validating; the service compares to the DB.
        user.refresh_from_db()
        if not valid:
            raise form_errors(form)
        user_update_profile(
            actor=user,
            user=user,
            data={k: v for k, v in form.cleaned_data.items() if k in changes},
            ip_address=client_ip(request._request),
        )
        return Response(MeSerializer(user).data)


def form_errors(form: ProfileForm) -> ValidationError:
    return ValidationError({k: [str(m) for m in v] for k, v in form.errors.items()})


class NotificationList(ListAPIView[Notification]):
    serializer_class = NotificationSerializer
    pagination_class = NewestFirstCursor

    @extend_schema(
        operation_id="me_notifications_list",
        tags=ME_TAGS,
        summary="Your in-site notifications, newest first",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        return notification_list_for_user(user=request_user(self.request))


class NotificationUnreadCount(APIView):
    @extend_schema(
        operation_id="me_notifications_unread_count",
        tags=ME_TAGS,
        summary="How many of your notifications are unread",
        responses={200: UnreadCountSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response({"unread": notification_unread_count(user=request_user(request))})


class NotificationRead(APIView):
    @extend_schema(
        operation_id="me_notifications_read",
        tags=ME_TAGS,
        summary="Mark one notification read",
        request=None,
        responses={200: NotificationSerializer},
    )
    def post(self, request: Request, notification_id: int) -> Response:
        user = request_user(request)
        notification = notification_get_for_user(user=user, notification_id=notification_id)
        notification_mark_read(user=user, notification_id=notification.pk)
        notification.refresh_from_db()
        return Response(NotificationSerializer(notification).data)


class NotificationReadAll(APIView):
    @extend_schema(
        operation_id="me_notifications_read_all",
        tags=ME_TAGS,
        summary="Mark all your notifications read",
        request=None,
        responses={200: MarkedSerializer},
    )
    def post(self, request: Request) -> Response:
        return Response({"marked": notification_mark_all_read(user=request_user(request))})
