"""Serializers of the privacy-requests API (DSR-1, DSR-2).

Input is checked by the web pages' own forms (dsr/forms.py), so the API accepts exactly
what the account page and the public form accept; the fields here describe it for the
schema and shape the answers.
"""

from __future__ import annotations

from typing import Any

from django import forms
from rest_framework import serializers

from dsr.forms import PublicRequestForm, RequestForm
from dsr.models import Jurisdiction, RejectionReason, RequestType, TicketEventKind, TicketStatus
from dsr.services.intake import DETAILS_MAX


def _form_checked(form: forms.Form) -> dict[str, Any]:
    """The form's cleaned data, or its errors as the API's field errors."""
    if not form.is_valid():
        raise serializers.ValidationError(
            {
                ("non_field_errors" if name == "__all__" else name): [str(m) for m in messages]
                for name, messages in form.errors.items()
            }
        )
    return dict(form.cleaned_data)


_FormClass = type[RequestForm]


# --- Input -----------------------------------------------------------------------------------
class RequestInSerializer(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=RequestType.choices)
    ccpa = serializers.BooleanField(
        default=False, help_text="A California resident: CCPA applies (45 days to answer)."
    )
    details = serializers.CharField(
        default="",
        allow_blank=True,
        max_length=DETAILS_MAX,
        help_text="Needed for rectification (what is wrong, what it should be) and for an "
        "objection (which use, and why) unless it is to direct marketing.",
    )
    direct_marketing = serializers.BooleanField(
        default=False, help_text="On an objection: it is to direct marketing (honoured at once)."
    )

    form_class: _FormClass = RequestForm

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        form = self.form_class(data=attrs)
        data = _form_checked(form)
        data["jurisdiction"] = form.jurisdiction
        return data


class PublicRequestInSerializer(RequestInSerializer):
    email = serializers.EmailField(
        max_length=254, help_text="A 6-digit code is sent to it; the request waits for it."
    )

    form_class = PublicRequestForm


class CodeInSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(max_length=12, help_text="The 6-digit code from the email.")


# --- Output ----------------------------------------------------------------------------------
class RequestSerializer(serializers.Serializer[Any]):
    """One request as listed: what it is, where it stands, and when it is due (DSR-2)."""

    reference = serializers.CharField(read_only=True)
    type = serializers.ChoiceField(choices=RequestType.choices, read_only=True)
    status = serializers.ChoiceField(choices=TicketStatus.choices, read_only=True)
    jurisdiction = serializers.ChoiceField(choices=Jurisdiction.choices, read_only=True)
    is_open = serializers.BooleanField(read_only=True)
    received_at = serializers.DateTimeField(read_only=True)
    due_on = serializers.DateField(
        read_only=True, help_text="The date the answer is due by (the extended one if extended)."
    )
    first_due = serializers.DateField(read_only=True)
    extended_due = serializers.DateField(read_only=True, allow_null=True)


class HistoryEntrySerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField(source="created_at", read_only=True)
    kind = serializers.ChoiceField(choices=TicketEventKind.choices, read_only=True)
    summary = serializers.CharField(read_only=True, help_text="What happened, for people.")
    to_status = serializers.ChoiceField(
        choices=TicketStatus.choices,
        read_only=True,
        allow_null=True,
        help_text="The new status, for a status change.",
    )


class RequestDetailSerializer(RequestSerializer):
    """What the request's own page shows its subject; never staff notes or staff names."""

    days_left = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Days until due (negative: overdue)."
    )
    extension_reason = serializers.CharField(read_only=True, allow_null=True)
    not_before = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="An erasure waits until then."
    )
    details = serializers.CharField(read_only=True, help_text="What you told us.")
    outcome_note = serializers.CharField(read_only=True, help_text="Our answer.")
    rejection_reason = serializers.ChoiceField(
        choices=RejectionReason.choices, read_only=True, allow_null=True
    )
    rejection_text = serializers.CharField(read_only=True)
    history = HistoryEntrySerializer(many=True, read_only=True)


class RequestCreatedSerializer(serializers.Serializer[Any]):
    merged = serializers.BooleanField(
        read_only=True,
        help_text="True: added to an open request of the same kind (the one returned).",
    )
    message = serializers.CharField(read_only=True)
    request = RequestSerializer(read_only=True)


class ExportLinkSerializer(serializers.Serializer[Any]):
    download_url = serializers.URLField(
        read_only=True,
        help_text="Short-lived: downloads the zip without a session or token, for a few "
        "minutes (see download_expires_at).",
    )
    download_expires_at = serializers.DateTimeField(read_only=True)
    url = serializers.URLField(
        read_only=True,
        help_text="The download link also sent by email. Open it signed in to the site "
        "(the same account); every download is recorded.",
    )
    expires_at = serializers.DateTimeField(
        read_only=True, help_text="The archive, and so the link, is deleted then."
    )
    size = serializers.IntegerField(read_only=True, help_text="Bytes.")
    sha256 = serializers.CharField(read_only=True)


class PublicAcceptedSerializer(serializers.Serializer[Any]):
    token = serializers.CharField(
        read_only=True, help_text="Opaque: names the request in the verify and resend calls."
    )
    message = serializers.CharField(read_only=True)


class PublicVerifiedSerializer(serializers.Serializer[Any]):
    """What the public "confirmed" page shows."""

    reference = serializers.CharField(read_only=True)
    type = serializers.ChoiceField(choices=RequestType.choices, read_only=True)
    status = serializers.ChoiceField(choices=TicketStatus.choices, read_only=True)
    jurisdiction = serializers.ChoiceField(choices=Jurisdiction.choices, read_only=True)
    received_at = serializers.DateTimeField(read_only=True)
    due_on = serializers.DateField(read_only=True, allow_null=True)
    message = serializers.CharField(read_only=True)


class MessageSerializer(serializers.Serializer[Any]):
    message = serializers.CharField(read_only=True)
