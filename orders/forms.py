"""Customer forms for orders. Files are read from request.FILES by the views (several per field)."""

from __future__ import annotations

from django import forms

from images.passport_specs import DOCUMENT_SPECS


class RetouchOrderForm(forms.Form):
    instructions = forms.CharField(
        label="What should the retoucher do?",
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=5000,
        help_text="These instructions apply to every photo; you can add notes per photo too.",
    )


class PhotoUploadForm(forms.Form):
    note = forms.CharField(
        label="Instructions for these photos (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class PhotoNoteForm(forms.Form):
    instructions = forms.CharField(
        label="Instructions for this photo",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class PassportForm(forms.Form):
    document = forms.ChoiceField(
        label="Document",
        choices=[(key, spec.label) for key, spec in DOCUMENT_SPECS.items()],
    )


class GuestEmailForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        help_text="Only for your receipt and the link to your files. No account is created.",
    )


class RevisionForm(forms.Form):
    comment = forms.CharField(
        label="What should be changed?", max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
