"""Breach incidents (BRE-1, BRE-2): the register, the frozen scope and its deliveries.

Every incident stays in the register, including those decided not to need notification,
with the reason (GDPR Art. 33(5)). Both clocks are computed once and stored: 72 hours
from awareness for the supervisory authority, 1 business day from confirmation for the
affected users.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from common.models import FanoutItem, TimeStampedModel


class IncidentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    CONFIRMED = "confirmed", "Confirmed"
    NOTIFYING = "notifying", "Notifying the affected"
    NOTIFIED = "notified", "Affected notified"
    CLOSED = "closed", "Closed"


class Incident(TimeStampedModel):
    reference = models.CharField(max_length=16, unique=True)
    title = models.CharField(max_length=200)
    aware_at = models.DateTimeField(help_text="When the service became aware: the 72 h clock.")
    authority_due = models.DateTimeField()
    description = models.TextField("what happened")
    data_categories = models.JSONField(default=list, blank=True)
    subject_categories = models.CharField(max_length=300, blank=True)
    approx_subjects = models.PositiveIntegerField(null=True, blank=True)
    consequences = models.TextField("likely consequences", blank=True)
    measures_taken = models.TextField(blank=True)
    measures_proposed = models.TextField(blank=True)
    advice = models.TextField("what the affected should do", blank=True)
    contact_point = models.CharField(max_length=300, blank=True)
    status = models.CharField(
        max_length=10, choices=IncidentStatus.choices, default=IncidentStatus.DRAFT
    )
    # Art. 33(5) / 34(3): decided not to notify, and why (kept in the register).
    notification_needed = models.BooleanField(default=True)
    no_notification_reason = models.TextField(blank=True)
    # The authority notification (Art. 33): when, their reference, what was sent.
    authority_notified_at = models.DateTimeField(null=True, blank=True)
    authority_reference = models.CharField(max_length=200, blank=True)
    authority_content = models.TextField(blank=True)
    authority_delay_reason = models.TextField(blank=True)
    # The scope rules as staff built them (see dsr/services/breach_scope.py).
    scope = models.JSONField(default=dict, blank=True)
    calendar = models.CharField(max_length=16, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    users_due = models.DateTimeField(null=True, blank=True)
    # The exact text sent, stored with the incident.
    message_subject = models.CharField(max_length=200, blank=True)
    message_body = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-aware_at", "-id"]
        permissions = [
            ("confirm_incident", "Can confirm a breach and start notifying the affected"),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {self.title}"


class IncidentRecipient(FanoutItem):
    """One affected subject of a confirmed incident: the frozen scope, and their email.

    The unique constraint makes "exactly once per recipient" a fact of the database.
    """

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="recipients")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="breach_recipients",
    )
    email = models.EmailField(max_length=254)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "email"], name="dsr_incident_recipient_unique"
            )
        ]
        indexes = [models.Index(fields=["incident", "status", "id"])]

    def __str__(self) -> str:
        return f"{self.incident.reference} -> recipient {self.pk}"


class BreachNotice(models.Model):
    """The in-site notice of an account holder: a banner on every page until acknowledged."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notices")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="breach_notices"
    )
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["incident", "user"], name="dsr_breach_notice_unique")
        ]
        indexes = [
            # The banner's lookup runs on every page: keep it an index-only probe.
            models.Index(
                fields=["user"],
                name="dsr_notice_unacked_idx",
                condition=models.Q(acknowledged_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.incident.reference} notice"
