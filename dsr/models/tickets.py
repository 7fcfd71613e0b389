from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.utils import timezone

from common.models import TimeStampedModel


# --- Data-subject-rights tickets (DSR-1..DSR-6) ------------------------------------------------
class RequestType(models.TextChoices):
    ACCESS = "access", "Access (a copy of my data)"
    PORTABILITY = "portability", "Portability (machine-readable export)"
    RECTIFICATION = "rectification", "Rectification (correct my data)"
    ERASURE = "erasure", "Erasure (delete my data)"
    RESTRICTION = "restriction", "Restriction of processing"
    OBJECTION = "objection", "Objection to processing"
    WITHDRAW_CONSENT = "withdraw_consent", "Withdrawal of consent"
    AUTOMATED = "automated", "Automated decisions: explanation and human review"
    SHINE_THE_LIGHT = "shine_the_light", "California Shine the Light"


# Types whose fulfilment is an export archive.
EXPORT_TYPES = frozenset({RequestType.ACCESS, RequestType.PORTABILITY})


class Jurisdiction(models.TextChoices):
    """Which law's clock runs. CCPA "know"/"delete" are CCPA access/erasure tickets."""

    GDPR = "gdpr", "GDPR (EU, EEA, UK)"
    CCPA = "ccpa", "CCPA (California)"


class TicketStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    AWAITING_VERIFICATION = "awaiting_verification", "Awaiting verification"
    VERIFIED = "verified", "Verified"
    IN_PROGRESS = "in_progress", "In progress"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting staff decision"
    FULFILLED = "fulfilled", "Fulfilled"
    REJECTED = "rejected", "Rejected"
    CLOSED = "closed", "Closed"


OPEN_STATUSES = frozenset(
    {
        TicketStatus.RECEIVED,
        TicketStatus.AWAITING_VERIFICATION,
        TicketStatus.VERIFIED,
        TicketStatus.IN_PROGRESS,
        TicketStatus.AWAITING_APPROVAL,
    }
)

# The explicit state machine: every transition goes through ticket_transition.
TRANSITIONS: dict[str, frozenset[str]] = {
    TicketStatus.RECEIVED: frozenset(
        {
            TicketStatus.AWAITING_VERIFICATION,
            TicketStatus.VERIFIED,
            TicketStatus.REJECTED,
        }
    ),
    TicketStatus.AWAITING_VERIFICATION: frozenset({TicketStatus.VERIFIED, TicketStatus.REJECTED}),
    TicketStatus.VERIFIED: frozenset(
        {
            TicketStatus.IN_PROGRESS,
            TicketStatus.AWAITING_APPROVAL,
            TicketStatus.FULFILLED,
            TicketStatus.REJECTED,
        }
    ),
    TicketStatus.IN_PROGRESS: frozenset(
        {TicketStatus.AWAITING_APPROVAL, TicketStatus.FULFILLED, TicketStatus.REJECTED}
    ),
    TicketStatus.AWAITING_APPROVAL: frozenset(
        {TicketStatus.IN_PROGRESS, TicketStatus.FULFILLED, TicketStatus.REJECTED}
    ),
    TicketStatus.FULFILLED: frozenset({TicketStatus.CLOSED}),
    TicketStatus.REJECTED: frozenset({TicketStatus.CLOSED}),
    TicketStatus.CLOSED: frozenset(),
}


class RejectionReason(models.TextChoices):
    IDENTITY = "identity", "Identity not verified"
    UNFOUNDED = "unfounded", "Manifestly unfounded or excessive"
    EXEMPTION = "exemption", "Legal exemption"
    TOO_MANY = "too_many", "Too many requests"
    OTHER = "other", "Other"


class Channel(models.TextChoices):
    ACCOUNT = "account", "Account privacy page"
    PUBLIC_FORM = "public_form", "Public form"
    STAFF = "staff", "Entered by staff"
    API = "api", "API"


class IdentityCheck(models.TextChoices):
    NONE = "", "Not verified yet"
    LOGIN = "login", "Logged in to the account"
    EMAIL_CODE = "email_code", "Code sent to the email address"
    EMAIL_LINK = "email_link", "Link sent to the email address"
    STAFF_DOCUMENT = "staff_document", "Staff checked an identity document"
    STAFF_LETTER = "staff_letter", "Signed letter matching the account's details"
    STAFF_PHONE = "staff_phone", "Phone call: staff checked details only the subject knows"
    STAFF_REPORT = "staff_report", "Staff report (child's data: no verification needed)"


class AlertLevel(models.TextChoices):
    NONE = "", "None"
    AT_RISK = "at_risk", "Due within 3 business days"
    OVERDUE = "overdue", "Overdue"


class Ticket(TimeStampedModel):
    """One data-subject request, from receipt to closure, with its legal clock.

    Due dates are computed once from the deadline calendar when the request is received
    and stored here (holiday data changes between releases); an extension writes
    ``extended_due`` and the reason, and ``due_on`` is the date that now applies.
    """

    reference = models.CharField(max_length=16, unique=True)
    type = models.CharField(max_length=20, choices=RequestType.choices)
    jurisdiction = models.CharField(
        max_length=8, choices=Jurisdiction.choices, default=Jurisdiction.GDPR
    )
    status = models.CharField(
        max_length=24, choices=TicketStatus.choices, default=TicketStatus.RECEIVED, db_index=True
    )
    channel = models.CharField(max_length=12, choices=Channel.choices)
    # The subject: an account, or (guests, non-users) an email address. Both may be set.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="dsr_tickets",
    )
    email = models.EmailField(max_length=254, blank=True, db_index=True)
    # The subject's own words: what is wrong (rectification), what they object to, ...
    details = models.TextField(blank=True)
    # Objection: direct marketing is honoured at once; other processing is decided by staff.
    direct_marketing = models.BooleanField(default=False)
    # ACC-5: reported as under 13; erased at once, without the waiting period.
    child = models.BooleanField(default=False)

    received_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    identity_check = models.CharField(
        max_length=16, choices=IdentityCheck.choices, blank=True, default=IdentityCheck.NONE
    )
    identity_note = models.TextField(blank=True, help_text="How staff checked the identity.")
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    # The legal clock (DSR-2), stored when received.
    calendar = models.CharField(max_length=16, help_text="The holiday calendar used.")
    first_due = models.DateField()
    extended_due = models.DateField(null=True, blank=True)
    extension_reason = models.TextField(blank=True)
    extended_at = models.DateTimeField(null=True, blank=True)
    confirm_due = models.DateField(null=True, blank=True, help_text="CCPA: confirm receipt by.")
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    alert_level = models.CharField(
        max_length=8, choices=AlertLevel.choices, blank=True, default=AlertLevel.NONE
    )

    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="dsr_assigned",
        limit_choices_to={"is_staff": True},
    )
    # Earlier requests this one repeats (Shine the Light twice a year, ...): flagged.
    repeat_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    flag = models.CharField(max_length=300, blank=True)
    merged_count = models.PositiveIntegerField(
        default=0, help_text="Duplicate requests of the same type merged into this one."
    )

    rejection_reason = models.CharField(max_length=12, choices=RejectionReason.choices, blank=True)
    rejection_text = models.TextField(blank=True)
    # What fulfilment produced: the erasure receipt, the Shine the Light answer, a
    # staff decision. Never personal data of the subject beyond what the answer needs.
    outcome = models.JSONField(default=dict, blank=True)
    outcome_note = models.TextField(blank=True, help_text="What the subject is told.")
    # A step that could not run (storage down, an order in progress), shown to staff.
    blocked_reason = models.CharField(max_length=500, blank=True)
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="Erasure waits until then (account closure setting)."
    )
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reduced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["first_due", "id"]
        indexes = [
            models.Index(fields=["status", "first_due"]),
            models.Index(fields=["user", "type", "status"]),
        ]
        permissions = [
            ("process_ticket", "Can work on data-subject requests"),
            ("approve_ticket", "Can extend, reject and approve data-subject requests"),
            ("report_child", "Can report an account as a child's (erased at once)"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} ({self.get_type_display()})"

    @property
    def due_on(self) -> date:
        return self.extended_due or self.first_due

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def subject_label(self) -> str:
        """For staff screens: the account's email, else the email given."""
        if self.user_id is not None and self.user is not None:
            return self.user.email
        return self.email or "-"


class TicketEventKind(models.TextChoices):
    CREATED = "created", "Request received"
    TRANSITION = "transition", "Status changed"
    MERGED = "merged", "Duplicate request merged"
    ASSIGNED = "assigned", "Assigned"
    EXTENDED = "extended", "Deadline extended"
    CONFIRMED = "confirmed", "Receipt confirmed to the subject"
    NOTE = "note", "Note"
    SUBJECT_TOLD = "subject_told", "Subject told"
    DOWNLOAD = "download", "Archive downloaded"
    STEP = "step", "Fulfilment step"
    ALERT = "alert", "Deadline alert"


class TicketEvent(models.Model):
    """The ticket's history: every transition and action, with its actor (append-only)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=TicketEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.ticket.reference}: {self.get_kind_display()}"


class VerificationChallenge(models.Model):
    """A one-time code (and link) sent to a public-form requester's email address."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="challenges")
    purpose = models.CharField(max_length=16, default="verify")  # "verify" or "download"
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"challenge for {self.ticket.reference}"


class ArchiveStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    BUILDING = "building", "Being built"
    READY = "ready", "Ready to download"
    FAILED = "failed", "Failed (retrying)"
    EXPIRED = "expired", "Expired and deleted"


class ExportArchive(TimeStampedModel):
    """The one archive of an access/portability ticket, stored privately for 7 days."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="archive")
    status = models.CharField(
        max_length=10, choices=ArchiveStatus.choices, default=ArchiveStatus.PENDING
    )
    file = models.FileField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    # Per registry entry: rows and files included (no personal data, just counts).
    contents = models.JSONField(default=dict, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    downloads = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"archive of {self.ticket.reference}"


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    BLOCKED = "blocked", "Blocked (retrying)"
    FAILED = "failed", "Failed"


class ErasureStep(models.Model):
    """One idempotent step of an erasure; the ticket resumes at the first step not done."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="erasure_steps")
    position = models.PositiveSmallIntegerField()
    key = models.CharField(max_length=120)  # a registry label, or "sessions", "suppression", ...
    status = models.CharField(max_length=10, choices=StepStatus.choices, default=StepStatus.PENDING)
    rows_deleted = models.PositiveIntegerField(default=0)
    rows_anonymised = models.PositiveIntegerField(default=0)
    rows_kept = models.PositiveIntegerField(default=0)
    files_deleted = models.PositiveIntegerField(default=0)
    # Files per storage prefix, and what was kept and until when (no personal data).
    detail = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["ticket", "position"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "key"], name="dsr_erasure_step_unique")
        ]

    def __str__(self) -> str:
        return f"{self.ticket.reference}: {self.key} ({self.status})"


class ProcessingRestriction(TimeStampedModel):
    """Art. 18: while active, every processing path refuses to act on the subject's data."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="processing_restrictions",
    )
    email = models.EmailField(max_length=254, blank=True, db_index=True)
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="restrictions"
    )
    reason = models.TextField(blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lift_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["user"],
                name="dsr_restriction_active_idx",
                condition=models.Q(lifted_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"restriction of {self.user or self.email}"

    @property
    def active(self) -> bool:
        return self.lifted_at is None
