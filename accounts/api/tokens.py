"""Personal API tokens: sign in for a token (password + fresh second factor), list, revoke.

Sign-in follows the web login exactly (accounts/views/auth.py): ``authenticate`` with the
request, so django-axes counts failures and locks out as on the web; one answer for an
unknown address and a wrong password; the same audit rows.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, user_logged_in, user_login_failed
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenSerializer,
    TokenCreateSerializer,
)
from accounts.models import ApiToken, AuditAction, User, normalize_email
from accounts.selectors import api_token_get_for_user, api_tokens_for_user
from accounts.services.audit import audit_log_write
from accounts.services.tokens import (
    ApiTokenLimitReached,
    ApiTokenRefused,
    api_token_create,
    api_token_revoke,
)
from accounts.services.twofactor import second_factor_check, totp_device_for
from common.api.authentication import request_user
from common.api.errors import ApiError, domain_error
from common.api.schema import errors
from common.api.throttles import LoginThrottle, throttles
from common.http import client_ip

domain_error(ApiTokenRefused, status_code=409, code="refused")
domain_error(ApiTokenLimitReached, status_code=409, code="token_limit")

TAGS = ["auth"]
WRONG_CREDENTIALS = "The email address or password is not correct."


class LockedOut(ApiError):
    """Too many failed sign-ins for this account from this address (ACC-3)."""

    def __init__(self) -> None:
        super().__init__(
            "Too many failed attempts. Sign-in is locked for a while; try again later.",
            code="locked_out",
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
        # DRF's handler turns ``wait`` into Retry-After, as for a throttle.
        self.wait = int(settings.AXES_COOLOFF_TIME.total_seconds())


def _locked_out(django_request: HttpRequest, user: User | None, ip: str | None) -> LockedOut:
    audit_log_write(actor=None, action=AuditAction.LOCKOUT, subject=user, ip_address=ip)
    # Answered here in the API's shape; left set, AxesMiddleware would replace this answer
    # with the web's HTML lockout page.
    django_request.axes_locked_out = False  # type: ignore[attr-defined]
    return LockedOut()


def _sign_in(django_request: HttpRequest, data: dict[str, Any]) -> User:
    """The user for these credentials and second factor, or the refusal the web would give."""
    ip = client_ip(django_request)
    email = normalize_email(data["email"])
    user = authenticate(django_request, email=email, password=data["password"])
    if user is None:
        known = User.objects.filter(email=email).first()
        if getattr(django_request, "axes_locked_out", False):
            raise _locked_out(django_request, known, ip)
        audit_log_write(actor=None, action=AuditAction.LOGIN_FAILED, subject=known, ip_address=ip)
        raise ApiError(WRONG_CREDENTIALS, code="invalid_credentials", status_code=401)
    assert isinstance(user, User)
    if totp_device_for(user) is None:
        return user
    # A token outlives any session: it needs a fresh second factor, whatever came before.
    code = data.get("otp_code", "").strip()
    if not code:
        raise ApiError(
            "This account uses two-factor authentication: send otp_code, a current code "
            "from your authenticator app (or a recovery code).",
            code="second_factor_required",
            status_code=401,
        )
    if second_factor_check(user=user, code=code, ip_address=ip) is None:
        audit_log_write(
            actor=None,
            action=AuditAction.LOGIN_FAILED,
            subject=user,
            ip_address=ip,
            detail={"step": "second_factor"},
        )
        # The web limits wrong codes per password entry with its session; the API has no
        # session, so axes counts each wrong code as a failed sign-in and locks out.
        user_login_failed.send(
            sender=__name__, credentials={"email": email}, request=django_request
        )
        if getattr(django_request, "axes_locked_out", False):
            raise _locked_out(django_request, user, ip)
        raise ApiError("That code is not right.", code="second_factor_invalid", status_code=401)
    return user


# A server error report must not carry the password or code of a sign-in (as the web login).
@method_decorator(sensitive_post_parameters("password", "otp_code"), name="dispatch")
class TokenListCreate(APIView):
    throttle_classes = throttles(LoginThrottle)

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_authenticators(self) -> list[BaseAuthentication]:
        # Signing in proves who you are with the body: a session cookie (and its CSRF
        # check) or an old token has no say in it.
        if self.request is not None and self.request.method == "POST":
            return []
        return super().get_authenticators()

    @extend_schema(
        operation_id="auth_tokens_list",
        tags=TAGS,
        summary="Your API tokens that still work (never their secrets)",
        description="At most TOKEN_LIMIT_PER_USER live tokens exist, so this list is whole.",
        responses={200: ApiTokenSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        tokens = api_tokens_for_user(user=request_user(request))
        return Response(ApiTokenSerializer(tokens, many=True).data)

    @extend_schema(
        operation_id="auth_tokens_create",
        tags=TAGS,
        summary="Sign in with email and password (and a second factor) for a new token",
        description=(
            "Failed attempts count towards the same lockout as the web login. With "
            "two-factor authentication on, `otp_code` is required every time. The secret "
            "`token` is in this answer only."
        ),
        request=TokenCreateSerializer,
        responses={
            201: ApiTokenCreatedSerializer,
            **errors(
                401,
                409,
                429,
                e401=(
                    "`invalid_credentials` (unknown address or wrong password, or an "
                    "account that cannot sign in), `second_factor_required` or "
                    "`second_factor_invalid`."
                ),
                e409="`token_limit`: too many live tokens; revoke one first.",
                e429="`locked_out` after repeated failures, or `throttled`: see Retry-After.",
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        django_request = request._request
        user = _sign_in(django_request, data)
        token, secret = api_token_create(
            user=user, name=data.get("name", ""), ip_address=client_ip(django_request)
        )
        # As a web login: axes forgets earlier failures, last_login is set.
        user_logged_in.send(sender=type(user), request=django_request, user=user)
        body = ApiTokenCreatedSerializer(token, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)


class TokenDetail(APIView):
    @extend_schema(
        operation_id="auth_tokens_revoke",
        tags=TAGS,
        summary="Revoke one of your tokens",
        responses={204: OpenApiResponse(description="Revoked.")},
    )
    def delete(self, request: Request, token_key: str) -> Response:
        token = api_token_get_for_user(user=request_user(request), token_key=token_key)
        api_token_revoke(
            actor=request_user(request), token=token, ip_address=client_ip(request._request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenCurrent(APIView):
    @extend_schema(
        operation_id="auth_tokens_revoke_current",
        tags=TAGS,
        summary="Revoke the token this request was made with (sign out)",
        responses={
            204: OpenApiResponse(description="Revoked."),
            **errors(400, e400="`not_token_auth`: this request was not made with a token."),
        },
    )
    def delete(self, request: Request) -> Response:
        token = request.auth
        if not isinstance(token, ApiToken):
            raise ApiError("This request was not made with an API token.", code="not_token_auth")
        api_token_revoke(
            actor=request_user(request), token=token, ip_address=client_ip(request._request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
