"""Forms of the privacy-request pages (DSR-1): plain HTML, no script."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.html import format_html

from dsr.models import Jurisdiction, RequestType
from dsr.services.intake import DETAILS_MAX, DETAILS_REQUIRED

# One line per right, shown next to its choice.
EXPLANATIONS: dict[str, str] = {
    RequestType.ACCESS: "A copy of everything we hold about you, with a readable summary "
    "(CCPA: the right to know).",
    RequestType.PORTABILITY: "Your data in a machine-readable format (JSON), to take elsewhere.",
    RequestType.RECTIFICATION: "Correct data that is wrong and that you cannot edit yourself.",
    RequestType.ERASURE: "Delete your data (CCPA: the right to delete). Invoices are kept, "
    "reduced, for as long as tax law requires.",
    RequestType.RESTRICTION: "Keep your data but stop using it (no editing, no marketing, "
    "no publication) while a question is settled.",
    RequestType.OBJECTION: "Object to a use of your data; an objection to direct marketing is "
    "honoured at once.",
    RequestType.WITHDRAW_CONSENT: "Withdraw every consent you gave us.",
    RequestType.AUTOMATED: "An explanation of our automated passport-photo checks, and a "
    "person to review their result.",
    RequestType.SHINE_THE_LIGHT: "California: which personal data we disclosed to others for "
    "their direct marketing last year, and to whom.",
}


def type_choices() -> list[tuple[str, Any]]:
    return [
        (value, format_html("<strong>{}</strong>: {}", label, EXPLANATIONS[value]))
        for value, label in RequestType.choices
    ]


class RequestForm(forms.Form):
    type = forms.ChoiceField(
        label="What would you like us to do?", choices=type_choices, widget=forms.RadioSelect
    )
    ccpa = forms.BooleanField(
        label="I am a California resident (CCPA applies: 45 days to answer)", required=False
    )
    details = forms.CharField(
        label="Details",
        required=False,
        max_length=DETAILS_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Needed for a correction (what is wrong, and what it should be) and for an "
        "objection (which use of your data, and why).",
    )
    direct_marketing = forms.BooleanField(
        label="My objection is to direct marketing (honoured at once, for all marketing)",
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("type")
        if kind != RequestType.OBJECTION:
            data["direct_marketing"] = False
        needed = DETAILS_REQUIRED.get(RequestType(kind)) if kind else None
        if needed and not data.get("details") and not data.get("direct_marketing"):
            self.add_error("details", needed)
        return data

    @property
    def jurisdiction(self) -> str:
        return Jurisdiction.CCPA if self.cleaned_data.get("ccpa") else Jurisdiction.GDPR


class PublicRequestForm(RequestForm):
    email = forms.EmailField(
        label="Your email address",
        max_length=254,
        help_text="We send a one-time code to it: the request goes ahead once you enter it. "
        "Use the address you ordered with or your account's address, so we find your data.",
    )

    field_order = ["email", "type", "ccpa", "details", "direct_marketing"]


class CodeForm(forms.Form):
    code = forms.CharField(
        label="6-digit code from the email",
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class CloseAccountForm(forms.Form):
    password = forms.CharField(
        label="Your password", strip=False, max_length=128, widget=forms.PasswordInput
    )
