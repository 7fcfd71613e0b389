"""Personal API tokens (django-rest-knox) with a coarse last-used time for the token list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication

# Writing on every request would turn each API read into a write; a minute is enough to
# tell a customer which token is in use.
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiTokenAuthentication(TokenAuthentication):
    def _cleanup_token(self, auth_token: Any) -> bool:
        """Refuse (and delete) this token if expired.

        knox also walks every other token of the user on each request to delete expired
        ones; here the retention engine does that (registry rule on ApiToken), so a
        request costs one token lookup, whatever the number of tokens.
        """
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False

    def validate_user(self, auth_token: Any) -> tuple[Any, Any]:
        user, token = super().validate_user(auth_token)
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
            type(token).objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return user, token


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How the schema describes the token: `Authorization: Token <secret>`."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A personal API token, prefixed: `Token <secret>`. Create one with "
            "POST /api/v1/auth/tokens/ or on the profile page.",
        }
