"""Forms of the incident register: the register fields, a scope rule, the message (BRE-1).

Validation lives here so the admin stays thin: a late authority notification needs its
reasons (Art. 33(1)), a decision not to notify needs its reason (Art. 33(5)), and a scope
rule is only appended when it is complete.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from django import forms
from django.utils.dateparse import parse_datetime

from dsr import calendar
from dsr.models import Incident
from dsr.registry import Category
from dsr.services.breach_scope import RULE_KINDS

RULE_LABELS = {
    "everyone": "Everyone with an active account",
    "categories": "Holders of data of given categories",
    "uploads": "Customers who uploaded images in a window",
    "orders": "Customers who placed orders in a window",
    "activity": "Accounts with request-log activity in a window",
    "list": "A pasted list of emails or user ids",
}
WINDOW_KINDS = ("uploads", "orders", "activity")
_DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class IncidentForm(forms.ModelForm):
    # Declared here: the admin would otherwise swap in its split date/time widget.
    aware_at = forms.DateTimeField(
        label="Aware at (UTC)",
        widget=_DATETIME,
        help_text="When the service became aware: starts the authority's 72-hour clock.",
    )
    authority_notified_at = forms.DateTimeField(
        label="Authority notified at (UTC)", required=False, widget=_DATETIME
    )
    data_categories = forms.MultipleChoiceField(
        label="Categories of data",
        choices=Category.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Incident
        fields = [
            "title",
            "aware_at",
            "description",
            "data_categories",
            "subject_categories",
            "approx_subjects",
            "consequences",
            "measures_taken",
            "measures_proposed",
            "advice",
            "contact_point",
            "notification_needed",
            "no_notification_reason",
            "authority_notified_at",
            "authority_reference",
            "authority_content",
            "authority_delay_reason",
            "message_subject",
            "message_body",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (
            data.get("notification_needed") is False
            and not (data.get("no_notification_reason") or "").strip()
        ):
            self.add_error(
                "no_notification_reason",
                "Say why the breach needs no notification: the register keeps the reason "
                "(GDPR Art. 33(5)).",
            )
        notified = data.get("authority_notified_at")
        aware = data.get("aware_at") or getattr(self.instance, "aware_at", None)
        if notified and aware:
            due = self.instance.authority_due if self.instance.pk else None
            due = due or calendar.breach_authority_due(aware)
            if notified > due and not (data.get("authority_delay_reason") or "").strip():
                self.add_error(
                    "authority_delay_reason",
                    "The authority was notified after the 72 hours: give the reasons for the "
                    "delay (GDPR Art. 33(1)).",
                )
            if notified < aware:
                self.add_error("authority_notified_at", "This is before the time of awareness.")
        return data


class ScopeRuleForm(forms.Form):
    # No default: "everyone" preselected would be one careless click from telling everybody.
    kind = forms.ChoiceField(
        label="Rule",
        choices=[("", "Choose a rule…")]
        + [(k, RULE_LABELS[k]) for k in RULE_KINDS if k in RULE_LABELS],
    )
    start = forms.DateTimeField(label="From (UTC)", required=False, widget=_DATETIME)
    end = forms.DateTimeField(label="Until (UTC)", required=False, widget=_DATETIME)
    categories = forms.MultipleChoiceField(
        label="Categories", choices=Category.choices, required=False,
        widget=forms.CheckboxSelectMultiple,
    )  # fmt: skip
    entries = forms.CharField(
        label="Emails or user ids",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One a line, or separated by commas or spaces.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind in WINDOW_KINDS:
            start, end = data.get("start"), data.get("end")
            if not start or not end:
                raise forms.ValidationError("Give the window's start and end.")
            if end <= start:
                raise forms.ValidationError("The window's end must be after its start.")
        if kind == "categories" and not data.get("categories"):
            raise forms.ValidationError("Choose at least one data category.")
        if kind == "list":
            emails, ids, bad = _split_entries(data.get("entries") or "")
            if bad:
                raise forms.ValidationError(
                    "Not an email or a user id: "
                    + ", ".join(bad[:5])
                    + ("…" if len(bad) > 5 else "")
                )
            if not emails and not ids:
                raise forms.ValidationError("Paste at least one email or user id.")
        return data

    def rule(self) -> dict[str, Any]:
        """The rule as the scope stores it (see dsr/services/breach_scope.py)."""
        data = self.cleaned_data
        kind = data["kind"]
        if kind in WINDOW_KINDS:
            return {
                "kind": kind,
                "start": data["start"].isoformat(),
                "end": data["end"].isoformat(),
            }
        if kind == "categories":
            return {"kind": kind, "categories": list(data["categories"])}
        if kind == "list":
            emails, ids, _ = _split_entries(data["entries"])
            return {"kind": kind, "emails": emails, "user_ids": ids}
        return {"kind": kind}


def _split_entries(text: str) -> tuple[list[str], list[int], list[str]]:
    emails: list[str] = []
    ids: list[int] = []
    bad: list[str] = []
    for item in re.split(r"[\s,;]+", text.strip()):
        if not item:
            continue
        if item.isdigit():
            ids.append(int(item))
        elif re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", item):
            emails.append(item.lower())
        else:
            bad.append(item)
    return sorted(set(emails)), sorted(set(ids)), bad


def rule_text(rule: dict[str, Any]) -> str:
    """One line per rule, for the scope page and the change page."""
    kind = str(rule.get("kind", "?"))
    label = RULE_LABELS.get(kind, kind)
    if kind in WINDOW_KINDS:
        return f"{label}: {_when(rule.get('start'))} to {_when(rule.get('end'))}"
    if kind == "categories":
        return f"{label}: {', '.join(str(c) for c in rule.get('categories') or [])}"
    if kind == "list":
        return (
            f"{label}: {len(rule.get('emails') or [])} emails, "
            f"{len(rule.get('user_ids') or [])} user ids"
        )
    return label


def _when(value: Any) -> str:
    parsed = parse_datetime(str(value or ""))
    if parsed is None or parsed.tzinfo is None:
        return str(value)
    return f"{parsed.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
