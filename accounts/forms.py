from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django_countries import countries
from django_countries.fields import LazyTypedChoiceField  # type: ignore[attr-defined]

from accounts.choices import CURRENCY_CHOICES
from accounts.models import PROFILE_FIELDS, User, normalize_email
from common.widgets import FastSelect, FixedChoiceField


class SignupForm(forms.Form):
    AGE_CHOICES = [("13_or_older", "I am 13 or older"), ("under_13", "I am under 13")]

    email = forms.EmailField(label="Email address", max_length=254)
    full_name = forms.CharField(label="Full name", max_length=150)
    country = LazyTypedChoiceField(label="Country", choices=countries)
    password = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput, max_length=128
    )
    password_confirm = forms.CharField(
        label="Password again", strip=False, widget=forms.PasswordInput, max_length=128
    )
    age = forms.ChoiceField(label="Your age", choices=AGE_CHOICES, widget=forms.RadioSelect)

    def is_under_13(self) -> bool:
        return self.data.get("age") == "under_13"

    def clean_email(self) -> str:
        email = normalize_email(self.cleaned_data["email"])
        if User.objects.filter(email=email).exists():
            raise forms.ValidationError("An account with this email address already exists.")
        return email

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        pw, pw2 = data.get("password"), data.get("password_confirm")
        if pw and pw2 and pw != pw2:
            self.add_error("password_confirm", "The two passwords do not match.")
        elif pw:
            probe = User(email=data.get("email", ""), full_name=data.get("full_name", ""))
            try:
                password_validation.validate_password(pw, probe)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


class LoginForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    password = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput, max_length=128
    )


class SecondFactorForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app, or a recovery code",
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}),
    )


class TOTPConfirmForm(forms.Form):
    code = forms.CharField(
        label="6-digit code from the app",
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class TOTPDisableForm(forms.Form):
    code = forms.CharField(label="Current code (or a recovery code)", max_length=20, required=False)
    password = forms.CharField(
        label="…or your password",
        strip=False,
        required=False,
        widget=forms.PasswordInput,
        max_length=128,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("code") and not data.get("password"):
            raise forms.ValidationError("Enter a current code or your password.")
        return data


class ProfileForm(forms.ModelForm):
    website = forms.URLField(required=False, max_length=200, assume_scheme="https")
    # Long fixed lists: rendered by FastSelect and shared, not copied, per form (perf).
    country = FixedChoiceField(
        label="Country",
        choices=list(countries),
        widget=FastSelect(cache_key="profile-countries"),
    )
    preferred_currency = FixedChoiceField(
        label="Preferred currency",
        required=False,
        choices=[("", "---------"), *CURRENCY_CHOICES],
        widget=FastSelect(cache_key="profile-currencies"),
    )

    class Meta:
        model = User
        fields = list(PROFILE_FIELDS)
        labels = {"region": "State/region", "vat_id": "VAT ID"}

    def clean_phone(self) -> str:
        phone = self.cleaned_data["phone"].strip()
        allowed = set("+0123456789 -()/.")
        if phone and (not set(phone) <= allowed or sum(c.isdigit() for c in phone) < 5):
            raise forms.ValidationError("Enter a phone number using digits, spaces and + - ( ).")
        return phone


class ProfileImageForm(forms.Form):
    image = forms.FileField(label="Profile image (JPEG, PNG or WebP, up to 5 MB)")


class EmailChangeForm(forms.Form):
    new_email = forms.EmailField(label="New email address", max_length=254)
    password = forms.CharField(
        label="Current password", strip=False, widget=forms.PasswordInput, max_length=128
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        pw = self.cleaned_data["password"]
        if not self.user.check_password(pw):
            raise forms.ValidationError("Your password is not correct.")
        return pw


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
