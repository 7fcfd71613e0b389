"""Shapes of the consent API: a person's choices, the policy versions, the register."""

from __future__ import annotations

from typing import Any

from django.utils.html import linebreaks
from rest_framework import serializers

from consent.cookies import DNT, GPC
from consent.models import (
    LawfulBasis,
    PolicyVersion,
    PurposeKind,
    RecipientRole,
    TransferSafeguard,
)

SIGNALS = [(GPC, GPC), (DNT, DNT)]


# --- A person's consents ----------------------------------------------------------------------
class ConsentPurposeSerializer(serializers.Serializer[Any]):
    key = serializers.SlugField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=PurposeKind.choices)
    wording = serializers.CharField(help_text="The exact text the web page shows and records.")
    is_marketing = serializers.BooleanField(
        help_text="Withdrawing any marketing purpose withdraws all marketing (CON-2)."
    )
    granted = serializers.BooleanField()
    since = serializers.DateTimeField(
        allow_null=True, help_text="When the current answer was recorded; null if never asked."
    )
    overridden_by_signal = serializers.BooleanField(
        help_text="True when this request's privacy signal refuses the purpose, whatever "
        "was chosen."
    )


class CookiePurposeSerializer(serializers.Serializer[Any]):
    key = serializers.SlugField()
    name = serializers.CharField()
    wording = serializers.CharField()
    allowed = serializers.BooleanField(
        help_text="What this browser (its consent cookie and signal) allows on this request."
    )
    overridden_by_signal = serializers.BooleanField()


class ConsentsSerializer(serializers.Serializer[Any]):
    signal = serializers.ChoiceField(
        choices=SIGNALS,
        allow_null=True,
        help_text="The privacy signal this request carries (Sec-GPC: 1 wins over DNT: 1).",
    )
    purposes = ConsentPurposeSerializer(many=True, help_text="Given once per person.")
    cookies = CookiePurposeSerializer(
        many=True,
        help_text="Chosen per browser on the cookie settings page; reported, not set, here.",
    )


# --- Policy versions --------------------------------------------------------------------------
class PolicyVersionSummarySerializer(serializers.ModelSerializer[PolicyVersion]):
    published_at = serializers.DateTimeField(read_only=True, allow_null=True)
    is_current = serializers.SerializerMethodField()

    class Meta:
        model = PolicyVersion
        fields = ["number", "effective_at", "published_at", "summary", "reduces_rights"]
        fields += ["is_current"]
        read_only_fields = fields

    def get_is_current(self, obj: PolicyVersion) -> bool:
        current = self.context.get("current")
        return current is not None and current.pk == obj.pk


class PolicyVersionSerializer(PolicyVersionSummarySerializer):
    body_html = serializers.SerializerMethodField(
        help_text="The text as the privacy page shows it: escaped, in paragraphs."
    )

    class Meta(PolicyVersionSummarySerializer.Meta):
        fields = [*PolicyVersionSummarySerializer.Meta.fields, "body", "body_html"]
        read_only_fields = fields

    def get_body_html(self, obj: PolicyVersion) -> str:
        return str(linebreaks(obj.body, autoescape=True)) if obj.body else ""


# --- The processing register (TRN-1, DSR-5, DSR-6) --------------------------------------------
class ControllerSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    address = serializers.CharField(allow_blank=True)
    contact_email = serializers.CharField(allow_blank=True)


class RegisterPurposeSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    lawful_basis = serializers.ChoiceField(choices=LawfulBasis.choices)
    lawful_basis_label = serializers.CharField()
    legitimate_interest = serializers.CharField(allow_blank=True)


class AccountFieldSerializer(serializers.Serializer[Any]):
    field = serializers.CharField()
    category = serializers.CharField()
    why = serializers.CharField()


class RetentionRuleSerializer(serializers.Serializer[Any]):
    text = serializers.CharField(help_text="The rule as the engine describes it.")
    action = serializers.ChoiceField(choices=[("delete", "delete"), ("anonymise", "anonymise")])
    after = serializers.CharField(help_text="The event that starts the clock.")
    period_seconds = serializers.IntegerField()
    latest_seconds = serializers.IntegerField(
        help_text="At the latest: the period plus one sweep interval of the engine."
    )
    latest = serializers.CharField(help_text="latest_seconds, as the privacy page says it.")


class HoldingSerializer(serializers.Serializer[Any]):
    model = serializers.CharField(help_text="The model, as the registry names it (app.Model).")
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    categories = serializers.ListField(child=serializers.CharField())
    purpose = serializers.CharField()
    basis = serializers.CharField()
    erasure = serializers.CharField(help_text="What erasure does to these records.")
    kept_until = serializers.CharField(
        allow_blank=True, help_text="For records kept for a legal duty: when they go."
    )
    stored_files = serializers.BooleanField(
        help_text="Stored files are deleted with every stored version, before the records."
    )
    retention = RetentionRuleSerializer(many=True)


class RecipientSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    address = serializers.CharField()
    role = serializers.ChoiceField(choices=RecipientRole.choices)
    role_label = serializers.CharField()
    service = serializers.CharField()
    purposes = serializers.ListField(child=serializers.CharField())
    data_categories = serializers.ListField(child=serializers.CharField())
    country = serializers.CharField(help_text="ISO 3166-1 alpha-2.")
    country_name = serializers.CharField()
    outside_eea = serializers.BooleanField()
    transfer_safeguard = serializers.ChoiceField(choices=TransferSafeguard.choices)
    transfer_safeguard_label = serializers.CharField()
    safeguard_note = serializers.CharField(allow_blank=True)


class AuthoritySerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    address = serializers.CharField()
    country = serializers.CharField()
    country_name = serializers.CharField()
    website = serializers.CharField(allow_blank=True)
    email = serializers.CharField(allow_blank=True)
    phone = serializers.CharField(allow_blank=True)
    is_lead = serializers.BooleanField()


class EssentialCookieSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    purpose = serializers.CharField()


class ConsentCookieSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    name = serializers.CharField()
    wording = serializers.CharField()


class CookiesSerializer(serializers.Serializer[Any]):
    essential = EssentialCookieSerializer(many=True)
    with_consent = ConsentCookieSerializer(many=True)
    signals_honoured = serializers.ListField(child=serializers.CharField())


class RightSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(help_text="The request type to use with the requests API.")
    name = serializers.CharField()


class RegisterSerializer(serializers.Serializer[Any]):
    controller = ControllerSerializer()
    purposes = RegisterPurposeSerializer(many=True)
    account_fields = AccountFieldSerializer(many=True)
    holdings = HoldingSerializer(many=True)
    retention_sweep_minutes = serializers.IntegerField()
    server_log_days = serializers.IntegerField()
    recipients = RecipientSerializer(many=True)
    supervisory_authorities = AuthoritySerializer(many=True)
    cookies = CookiesSerializer()
    rights = RightSerializer(many=True)
