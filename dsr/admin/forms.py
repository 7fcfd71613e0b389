"""Forms of the ticket workbench: staff entry on a subject's behalf and each action button."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib.admin.sites import AdminSite
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.db import models

from accounts.models import User
from dsr.models import IdentityCheck, Jurisdiction, RejectionReason, RequestType, Ticket

# How staff may establish identity (the subject is not logged in and got no code).
STAFF_METHODS = [
    (c.value, c.label)
    for c in (IdentityCheck.STAFF_DOCUMENT, IdentityCheck.STAFF_LETTER, IdentityCheck.STAFF_PHONE)
]

_TEXTAREA = forms.Textarea(attrs={"rows": 3, "cols": 60})


class TicketActionForm(forms.Form):
    """Every action form knows its ticket (the rectification form shows current values)."""

    def __init__(self, *args: Any, ticket: Ticket, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ticket = ticket


class VerifyForm(TicketActionForm):
    method = forms.ChoiceField(label="How the identity was checked", choices=STAFF_METHODS)
    note = forms.CharField(
        label="What was checked",
        max_length=2000,
        widget=_TEXTAREA,
        help_text="E.g. which document, or which account details the caller confirmed.",
    )


class AssignForm(TicketActionForm):
    assignee = forms.ModelChoiceField(
        label="Assign to",
        queryset=User.objects.filter(is_staff=True, is_active=True).order_by("email"),
        required=False,
        empty_label="Nobody (unassign)",
    )


class ExtendForm(TicketActionForm):
    reason = forms.CharField(
        label="Reason (the subject is told it)", max_length=2000, widget=_TEXTAREA
    )


class RejectForm(TicketActionForm):
    reason = forms.ChoiceField(label="Reason", choices=RejectionReason.choices)
    text = forms.CharField(
        label="Explanation (the subject is told it; required for “Other”)",
        max_length=2000,
        required=False,
        widget=_TEXTAREA,
    )


class NoteForm(TicketActionForm):
    note = forms.CharField(label="Note (staff only)", max_length=2000, widget=_TEXTAREA)


class FulfilForm(TicketActionForm):
    note = forms.CharField(
        label="The answer (the subject is told it)", max_length=5000, widget=_TEXTAREA
    )


class CloseForm(TicketActionForm):
    note = forms.CharField(label="Note (optional)", max_length=2000, required=False)


class ConfirmForm(TicketActionForm):
    """A button with no input (approve the erasure)."""


class ObjectionForm(TicketActionForm):
    decision = forms.ChoiceField(
        label="Decision",
        choices=[
            ("uphold", "Uphold: stop this processing of the subject's data"),
            ("dismiss", "Dismiss: compelling legitimate grounds override the objection"),
        ],
    )
    reason = forms.CharField(
        label="Reason (the subject is told it)", max_length=5000, widget=_TEXTAREA
    )


class AutomatedReviewForm(TicketActionForm):
    outcome = forms.CharField(
        label="Result of the human review (the subject is told it)",
        max_length=5000,
        widget=_TEXTAREA,
    )


class RectificationForm(TicketActionForm):
    """One field per correctable account field, filled with today's value."""

    note = forms.CharField(
        label="Note (what was corrected and why; the subject is told it)",
        max_length=2000,
        widget=_TEXTAREA,
    )

    def __init__(self, *args: Any, ticket: Ticket, **kwargs: Any) -> None:
        from dsr.services.rights import rectifiable_fields

        super().__init__(*args, ticket=ticket, **kwargs)
        self.current: dict[str, str] = {}
        for name in rectifiable_fields():
            model_field = cast(models.CharField, User._meta.get_field(name))
            value = getattr(ticket.user, name, "") if ticket.user else ""
            value = str(getattr(value, "code", value) or "")  # a country is an object
            self.current[name] = value
            label = str(model_field.verbose_name).capitalize()
            if model_field.choices:
                choices = [("", "---------"), *model_field.choices]
                self.fields[name] = forms.ChoiceField(
                    label=label, choices=choices, required=False, initial=value
                )
            else:
                self.fields[name] = forms.CharField(
                    label=label, max_length=model_field.max_length, required=False, initial=value
                )
        self.order_fields([*self.current, "note"])

    def changes(self) -> dict[str, str]:
        """Only the fields staff changed (the service validates and applies them)."""
        data = self.cleaned_data
        return {
            name: data.get(name, "").strip()
            for name, before in self.current.items()
            if data.get(name, "").strip() != before
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.ticket.user is None:
            raise forms.ValidationError("This request has no account to correct.")
        if not self.errors and not self.changes():
            raise forms.ValidationError("Change at least one field.")
        return data


# --- Staff entry (letter, phone) --------------------------------------------------------------
class StaffEntryForm(forms.Form):
    user = forms.ModelChoiceField(
        label="Subject's account",
        queryset=User.objects.filter(is_active=True),
        required=False,
        help_text="The account id (use the magnifier to search), or leave empty and give the "
        "email address.",
    )
    email = forms.EmailField(
        label="Subject's email address",
        required=False,
        help_text="For people without an account; an address of an account links to it.",
    )
    type = forms.ChoiceField(label="Request", choices=RequestType.choices)
    jurisdiction = forms.ChoiceField(
        label="Law", choices=Jurisdiction.choices, initial=Jurisdiction.GDPR
    )
    details = forms.CharField(
        label="The subject's request in their words",
        required=False,
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60}),
    )
    direct_marketing = forms.BooleanField(
        label="Objection to direct marketing (honoured at once)", required=False
    )
    identity_check = forms.ChoiceField(label="How the identity was checked", choices=STAFF_METHODS)
    identity_note = forms.CharField(
        label="What was checked",
        max_length=2000,
        widget=_TEXTAREA,
        help_text="E.g. the letter's date and signature, which details the caller confirmed.",
    )

    def __init__(self, *args: Any, admin_site: AdminSite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        remote = Ticket._meta.get_field("user").remote_field
        self.fields["user"].widget = ForeignKeyRawIdWidget(remote, admin_site)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        user, email = data.get("user"), (data.get("email") or "").strip().lower()
        if user is None and not email:
            if not self.has_error("email") and not self.has_error("user"):
                raise forms.ValidationError("Give the subject's account or email address.")
            return data
        if user is not None and email and user.email.lower() != email:
            raise forms.ValidationError(
                "The email address is not the account's: give one or the other."
            )
        if user is None:
            # The subject has an account: the request is about all of it, not just the address.
            data["user"] = User.objects.filter(email__iexact=email, is_active=True).first()
        data["email"] = email
        return data


class ChildReportForm(forms.Form):
    """ACC-5: an account reported as an under-13's is erased at once."""

    user = forms.ModelChoiceField(
        label="The account",
        queryset=User.objects.filter(is_active=True, is_staff=False),
        help_text="The account id (use the magnifier to search).",
    )
    note = forms.CharField(
        label="How we learned it",
        max_length=2000,
        widget=_TEXTAREA,
        help_text="E.g. a parent's message of 3 March, or the photos show a young child.",
    )

    def __init__(self, *args: Any, admin_site: AdminSite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        remote = Ticket._meta.get_field("user").remote_field
        self.fields["user"].widget = ForeignKeyRawIdWidget(remote, admin_site)
