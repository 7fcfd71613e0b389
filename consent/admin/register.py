"""Admin: the processing register (TRN-1, DSR-6) and the record of disclosures (DSR-5).

Purposes, recipients and supervisory authorities are edited here and published as they
are on the privacy page. Disclosures are records: added once, with their subjects,
never edited or deleted by hand.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.core import checks
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from consent.models import (
    Disclosure,
    DisclosureSubject,
    LawfulBasis,
    ProcessingPurpose,
    Recipient,
    SupervisoryAuthority,
)
from consent.services.register import disclosure_record
from dsr.registry import Category


class ProcessingPurposeForm(forms.ModelForm):
    class Meta:
        model = ProcessingPurpose
        fields = ("name", "lawful_basis", "legitimate_interest", "description", "position")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # The database refuses it too (purpose_interest_stated); say why here, before it does.
        if (
            data.get("lawful_basis") == LawfulBasis.LEGITIMATE_INTEREST
            and not (data.get("legitimate_interest") or "").strip()
        ):
            self.add_error(
                "legitimate_interest",
                "A legitimate interest must be stated: the privacy page publishes it.",
            )
        return data


@admin.register(ProcessingPurpose)
class ProcessingPurposeAdmin(admin.ModelAdmin):
    form = ProcessingPurposeForm
    list_display = ("name", "key", "lawful_basis", "position")
    list_filter = ("lawful_basis",)
    readonly_fields = ("key",)
    fields = ("key", "name", "lawful_basis", "legitimate_interest", "description", "position")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Keys come from the registry's declarations (dsr/purposes.py): code names them.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CategoryField(forms.MultipleChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Category.choices, widget=forms.CheckboxSelectMultiple, **kwargs)


class RecipientForm(forms.ModelForm):
    data_categories = CategoryField(label="Data categories")

    class Meta:
        model = Recipient
        fields = (
            "name",
            "address",
            "role",
            "service",
            "data_categories",
            "purposes",
            "country",
            "transfer_safeguard",
            "safeguard_note",
            "active",
        )
        widgets = {"purposes": forms.CheckboxSelectMultiple}

    def clean(self) -> dict[str, Any]:
        from consent.models import TransferSafeguard
        from consent.services.register import EEA_COUNTRIES

        data = super().clean() or {}
        country = str(data.get("country") or "")
        if (
            country
            and country not in EEA_COUNTRIES
            and data.get("transfer_safeguard") == TransferSafeguard.NOT_NEEDED
        ):
            self.add_error(
                "transfer_safeguard",
                "This country is outside the EEA: name the transfer safeguard.",
            )
        return data


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    form = RecipientForm
    list_display = ("name", "role", "country", "transfer_safeguard", "active")
    list_filter = ("role", "active", "transfer_safeguard")
    search_fields = ("name",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Recorded disclosures point to it: retire a recipient with "active" instead.
        return False


class SupervisoryAuthorityForm(forms.ModelForm):
    website = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = SupervisoryAuthority
        fields = ("name", "address", "website", "email", "phone", "country", "is_lead")


@admin.register(SupervisoryAuthority)
class SupervisoryAuthorityAdmin(admin.ModelAdmin):
    form = SupervisoryAuthorityForm
    list_display = ("name", "country", "is_lead", "website")
    list_filter = ("is_lead",)


class DisclosureSubjectInline(admin.TabularInline):
    model = DisclosureSubject
    fields = ("user", "email")
    readonly_fields = ("user", "email")
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Part of the disclosure's record: whoever may view the disclosure sees its subjects.
        return request.user.has_perm("consent.view_disclosure")


class DisclosureForm(forms.ModelForm):
    categories = CategoryField(label="Data categories disclosed")
    subject_emails = forms.CharField(
        label="Whose data (email addresses)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One address per line. Account holders are linked to their account; "
        "others are recorded by address.",
    )

    class Meta:
        model = Disclosure
        fields = (
            "recipient",
            "disclosed_at",
            "categories",
            "purpose",
            "for_direct_marketing",
            "description",
            "subjects_description",
        )

    def clean_subject_emails(self) -> list[str]:
        validator = forms.EmailField()
        emails = []
        for line in self.cleaned_data.get("subject_emails", "").splitlines():
            line = line.strip().strip(",;")
            if not line:
                continue
            try:
                emails.append(validator.clean(line).lower())
            except ValidationError as exc:
                raise ValidationError(f"Not an email address: {line}") from exc
        return emails

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        when = data.get("disclosed_at")
        if when is not None and when > timezone.now() + timedelta(minutes=5):
            self.add_error("disclosed_at", "Record a disclosure once it has happened.")
        described = (data.get("subjects_description") or "").strip()
        if "subject_emails" in data and not data["subject_emails"] and not described:
            self.add_error(None, "Say whose data it was: addresses, or a description.")
        return data


@admin.register(Disclosure)
class DisclosureAdmin(admin.ModelAdmin):
    """Recorded once, then read-only: a disclosure is evidence (DSR-5)."""

    form = DisclosureForm
    inlines = [DisclosureSubjectInline]
    list_display = (
        "disclosed_at",
        "recipient",
        "purpose",
        "for_direct_marketing",
        "subject_count",
        "recorded_by",
    )
    list_filter = ("for_direct_marketing", "purpose", "recipient")
    search_fields = ("=subjects__email", "=subjects__user__email", "description")
    date_hierarchy = "disclosed_at"
    list_select_related = ("recipient", "purpose", "recorded_by")
    readonly_fields = (
        "recipient",
        "disclosed_at",
        "category_labels",
        "purpose",
        "for_direct_marketing",
        "description",
        "subjects_description",
        "recorded_by",
        "created_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Disclosure]:
        return super().get_queryset(request).annotate(n_subjects=Count("subjects"))

    @admin.display(description="subjects")
    def subject_count(self, obj: Any) -> int:
        return int(getattr(obj, "n_subjects", 0))

    @admin.display(description="data categories")
    def category_labels(self, obj: Disclosure) -> str:
        labels = dict(Category.choices)
        return ", ".join(labels.get(c, c) for c in obj.categories)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return (*DisclosureForm.Meta.fields, "subject_emails")
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.inlines if obj is not None else []

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:  # pragma: no cover - has_change_permission is False
            raise PermissionError("Disclosures are records and are not edited")
        data = form.cleaned_data
        emails = data["subject_emails"]
        users = list(User.objects.filter(email__in=emails))
        known = {u.email.lower() for u in users}
        # The form checked categories, addresses and the description, as the service does.
        saved = disclosure_record(
            actor=cast(User, request.user),
            recipient=data["recipient"],
            categories=data["categories"],
            purpose=data["purpose"],
            description=data["description"],
            for_direct_marketing=data["for_direct_marketing"],
            users=users,
            emails=[e for e in emails if e not in known],
            subjects_description=data["subjects_description"],
            disclosed_at=data["disclosed_at"],
        )
        obj.pk = saved.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return None  # the subjects were written by disclosure_record


@checks.register(checks.Tags.database, deploy=True)
def register_complete_check(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> Any:
    """`check --deploy --database default`: the privacy page needs what staff configure."""
    if not databases:
        return []
    problems = []
    if not SupervisoryAuthority.objects.exists():
        problems.append(
            checks.Warning(
                "No supervisory authority is configured: the privacy page can only tell "
                "people in general terms where to complain (DSR-6).",
                hint="Add the lead authority under Consent > Supervisory authorities.",
                id="consent.W010",
            )
        )
    from consent.selectors import policy_current

    if policy_current() is None:
        problems.append(
            checks.Warning(
                "No privacy policy version is published: the privacy page has no "
                "last-modified date (CON-5).",
                hint="Write and publish a version under Consent > Policy versions.",
                id="consent.W011",
            )
        )
    return problems
