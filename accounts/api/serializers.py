"""Shapes of the accounts API: personal tokens, the signed-in person, notifications."""

from __future__ import annotations

from typing import Any

from django_countries import countries
from rest_framework import serializers

from accounts.choices import CURRENCY_CHOICES
from accounts.models import PROFILE_FIELDS, ApiToken, Notification, User
from accounts.services.tokens import NAME_MAX_LENGTH


# --- Tokens -----------------------------------------------------------------------------------
class TokenCreateSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        max_length=128, trim_whitespace=False, write_only=True, style={"input_type": "password"}
    )
    name = serializers.CharField(
        max_length=NAME_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="Your label for the token, e.g. the app or machine that uses it.",
    )
    otp_code = serializers.CharField(
        max_length=20,
        required=False,
        allow_blank=True,
        default="",
        write_only=True,
        help_text=(
            "With two-factor authentication on: a current code from the authenticator app, "
            "or an unused recovery code."
        ),
    )


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    token_key = serializers.CharField(
        read_only=True, help_text="The token's first characters: not secret, names it."
    )
    expiry = serializers.DateTimeField(read_only=True, allow_null=True)
    last_used_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="To the minute."
    )

    class Meta:
        model = ApiToken
        fields = ["token_key", "name", "created", "expiry", "last_used_at"]
        read_only_fields = fields


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.SerializerMethodField(
        help_text="The secret: send it as `Authorization: Token <token>`. Shown only now."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = ["token", *ApiTokenSerializer.Meta.fields]
        read_only_fields = fields

    def get_token(self, obj: ApiToken) -> str:
        return str(self.context["secret"])


# --- Me ---------------------------------------------------------------------------------------
class MeSerializer(serializers.ModelSerializer[User]):
    """The profile fields of "My profile"; the web form's rules validate a change."""

    email = serializers.EmailField(
        read_only=True,
        help_text=(
            "Read-only here: changing it needs a confirmation link sent to the new address, "
            "so it is changed on the web (Security page)."
        ),
    )
    email_verified = serializers.BooleanField(source="is_email_verified", read_only=True)
    country = serializers.ChoiceField(choices=list(countries))
    # The form accepts an address without a scheme (it assumes https): so does the API.
    website = serializers.CharField(max_length=200, allow_blank=True, required=False)
    preferred_currency = serializers.ChoiceField(
        choices=CURRENCY_CHOICES, allow_blank=True, required=False
    )

    class Meta:
        model = User
        fields = ["email", "email_verified", *PROFILE_FIELDS]
        # The form decides lengths and formats (phone, website): none restated here.
        extra_kwargs = {f: {"required": False} for f in PROFILE_FIELDS}

    def to_representation(self, instance: User) -> dict[str, Any]:
        data = super().to_representation(instance)
        country: Any = instance.country  # a django-countries Country
        data["country"] = str(country.code or "")
        return data


class UnreadCountSerializer(serializers.Serializer[Any]):
    unread = serializers.IntegerField(read_only=True)


class MarkedSerializer(serializers.Serializer[Any]):
    marked = serializers.IntegerField(read_only=True, help_text="How many were unread.")


class NotificationSerializer(serializers.ModelSerializer[Notification]):
    read = serializers.SerializerMethodField()
    read_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Notification
        fields = ["id", "title", "body", "link", "created_at", "read", "read_at"]
        read_only_fields = fields

    def get_read(self, obj: Notification) -> bool:
        return obj.read_at is not None
