"""Consent ledger, marketing email, policy versions and the processing register.

The ledger (ConsentEvent) is append-only evidence (CON-3); ConsentState is the current
answer per subject, purpose and target, written in the same transaction as the event
that decides it, so "may we do X now?" is one indexed lookup (or one join for a batch).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_countries.fields import CountryField

from common.maintenance import maintenance_allowed
from common.models import FanoutItem, TimeStampedModel


# --- Purposes of consent --------------------------------------------------------------------
class PurposeKind(models.TextChoices):
    COOKIE = "cookie", "Cookies and similar technologies"
    MARKETING = "marketing", "Marketing"
    IMAGE = "image", "Use of one image"
    OTHER = "other", "Other"


class ConsentPurpose(TimeStampedModel):
    """Something we may do only with consent. Staff may add more in the admin."""

    # Built in: features check these keys in code.
    MARKETING_EMAIL = "marketing_email"
    ANALYTICS = "analytics"
    ADVERTISING = "advertising"
    PORTFOLIO = "portfolio"
    COOKIE_KEYS = (ANALYTICS, ADVERTISING)

    key = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=PurposeKind.choices)
    wording = models.TextField(help_text="The exact text shown when asking for consent.")
    # An unsubscribe or an objection to direct marketing withdraws every marketing purpose (CON-2).
    is_marketing = models.BooleanField(default=False)
    # Consent is given per object (one image for the portfolio), not once per person.
    per_object = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "key"]

    def __str__(self) -> str:
        return self.name


class ConsentText(models.Model):
    """The exact wording shown, stored once per digest: the ledger points here."""

    digest = models.CharField(max_length=64, unique=True)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.digest[:12]}: {self.text[:60]}"

    @staticmethod
    def digest_of(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ConsentMethod(models.TextChoices):
    FORM = "form", "Form on the site"
    BANNER = "banner", "Cookie banner"
    API = "api", "API"
    SIGNAL = "signal", "Browser signal (Do Not Track / Global Privacy Control)"
    EMAIL_LINK = "email_link", "Link in an email"
    STAFF = "staff", "Staff, on the subject's written request"


def subject_key(*, user_id: int | None = None, email: str = "", visitor: str = "") -> str:
    """The one key a consent belongs to: an account, else an email address, else a browser."""
    if user_id is not None:
        return f"u:{user_id}"
    if email:
        return f"e:{email.strip().lower()}"
    if visitor:
        return f"v:{visitor}"
    raise ValueError("A consent needs a user, an email address or a visitor id")


class AppendOnlyQuerySet(models.QuerySet[Any]):
    """Evidence is never edited; only retention and erasure may remove it."""

    def update(self, **kwargs: Any) -> int:
        if not maintenance_allowed():
            raise PermissionError("The consent ledger is append-only")
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        if not maintenance_allowed():
            raise PermissionError("The consent ledger is append-only")
        return super().delete()


class ConsentEvent(models.Model):
    """One consent given or withdrawn, with its evidence (CON-3). Append-only."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    subject = models.CharField(max_length=300, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="consent_events",
    )
    email = models.EmailField(max_length=254, blank=True)
    visitor = models.CharField(max_length=40, blank=True)
    purpose = models.ForeignKey(ConsentPurpose, on_delete=models.PROTECT, related_name="events")
    target = models.CharField(max_length=100, blank=True)  # e.g. "result:42"
    granted = models.BooleanField()
    policy_version = models.ForeignKey(
        "PolicyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    wording = models.ForeignKey(ConsentText, on_delete=models.PROTECT, related_name="+")
    method = models.CharField(max_length=12, choices=ConsentMethod.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # Staff who recorded it on the subject's written request; the note says which letter.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.CharField(max_length=300, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["subject", "purpose", "target", "-created_at"])]
        permissions = [("record_consent", "Can record a consent on the subject's written request")]

    def __str__(self) -> str:
        verb = "gave" if self.granted else "withdrew"
        return f"{self.subject} {verb} {self.purpose_id} at {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("The consent ledger is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("The consent ledger is append-only")


class ConsentState(models.Model):
    """The current answer for a subject, purpose and target: the latest event's."""

    subject = models.CharField(max_length=300)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="consent_states",
    )
    email = models.EmailField(max_length=254, blank=True)
    purpose = models.ForeignKey(ConsentPurpose, on_delete=models.PROTECT, related_name="states")
    target = models.CharField(max_length=100, blank=True)
    granted = models.BooleanField()
    event = models.ForeignKey(ConsentEvent, on_delete=models.CASCADE, related_name="current_for")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "purpose", "target"], name="consent_state_unique"
            )
        ]
        indexes = [models.Index(fields=["purpose", "granted"])]

    def __str__(self) -> str:
        return f"{self.subject} {self.purpose_id}{':' + self.target if self.target else ''}"


# --- Policy versions (CON-5) ----------------------------------------------------------------
class PolicyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class PolicyVersion(TimeStampedModel):
    """The prose of the privacy policy, versioned; the tables around it are generated."""

    number = models.PositiveIntegerField(unique=True)
    status = models.CharField(
        max_length=10, choices=PolicyStatus.choices, default=PolicyStatus.DRAFT
    )
    effective_at = models.DateTimeField(default=timezone.now)
    summary = models.TextField("summary of changes")
    reduces_rights = models.BooleanField(
        "reduces users' rights",
        default=False,
        help_text="Publishing emails every account holder and shows a notice on the site.",
    )
    body = models.TextField(
        blank=True, help_text="The policy's own words; blank lines separate paragraphs."
    )
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-number"]
        permissions = [("publish_policyversion", "Can publish a privacy policy version")]

    def __str__(self) -> str:
        return f"Privacy policy version {self.number}"


class PolicyNoticeSend(FanoutItem):
    """The email about a rights-reducing version, once per account holder."""

    version = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="sends")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="policy_notices"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "user"], name="policy_notice_once")
        ]
        indexes = [models.Index(fields=["version", "status"])]

    def __str__(self) -> str:
        return f"notice of version {self.version_id} to user {self.user_id}"


class PolicyAcknowledgement(models.Model):
    """An account holder dismissed (or acknowledged) the notice of a version."""

    version = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="acks")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="policy_acks"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "user"], name="policy_ack_once")]

    def __str__(self) -> str:
        return f"user {self.user_id} saw version {self.version_id}"


# --- Marketing email (CON-1, CON-2, CON-6) --------------------------------------------------------
class SubscriberStatus(models.TextChoices):
    PENDING = "pending", "Waiting for confirmation"
    CONFIRMED = "confirmed", "Subscribed"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"


class Subscriber(TimeStampedModel):
    """A newsletter subscription (double opt-in). Whether we may send is the ledger's answer."""

    email = models.EmailField(max_length=254, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="subscriptions",
    )
    # The ledger subject whose marketing consent decides each send (see subject_key).
    consent_subject = models.CharField(max_length=300, db_index=True)
    status = models.CharField(
        max_length=12, choices=SubscriberStatus.choices, default=SubscriberStatus.PENDING
    )
    # What was shown when the person asked, recorded when they confirm (CON-3).
    wording = models.ForeignKey(ConsentText, on_delete=models.PROTECT, related_name="+")
    policy_version = models.ForeignKey(
        PolicyVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "id"])]

    def __str__(self) -> str:
        return self.email


class AudienceRule(models.TextChoices):
    PASSPORT_CUSTOMERS = "passport_customers", "Customers who bought passport photos"
    RETOUCH_CUSTOMERS = "retouch_customers", "Customers who ordered retouching"


class Audience(TimeStampedModel):
    """A marketing audience built from site use; its members age out after 540 days (CON-6)."""

    name = models.CharField(max_length=100)
    rule = models.CharField(max_length=30, choices=AudienceRule.choices)
    built_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class AudienceMember(models.Model):
    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="audiences"
    )
    # The site use that put the person in the audience: the retention clock (CON-6).
    activity_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["audience", "user"], name="audience_member_once")
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} in {self.audience_id}"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    CANCELLED = "cancelled", "Cancelled"


class Campaign(TimeStampedModel):
    subject = models.CharField(max_length=200)
    body = models.TextField(help_text="Plain text; blank lines separate paragraphs.")
    audience = models.ForeignKey(
        Audience,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        help_text="Empty: every confirmed subscriber.",
    )
    status = models.CharField(
        max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("send_campaign", "Can send a marketing campaign")]

    def __str__(self) -> str:
        return self.subject


class CampaignSend(FanoutItem):
    """One campaign email to one subscriber: exactly one row per pair."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="sends")
    subscriber = models.ForeignKey(
        Subscriber, null=True, on_delete=models.SET_NULL, related_name="sends"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "subscriber"], name="campaign_send_once")
        ]
        indexes = [models.Index(fields=["campaign", "status", "id"])]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} to subscriber {self.subscriber_id}"


# --- Processing register (TRN-1, DSR-5, DSR-6) --------------------------------------------------
class LawfulBasis(models.TextChoices):
    CONTRACT = "contract", "Contract"
    LEGAL_OBLIGATION = "legal_obligation", "Legal obligation"
    LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interest"
    CONSENT = "consent", "Consent"


class ProcessingPurpose(TimeStampedModel):
    """A purpose of processing with its lawful basis. Keys are those the registry declares."""

    key = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    lawful_basis = models.CharField(max_length=20, choices=LawfulBasis.choices)
    legitimate_interest = models.TextField(
        blank=True, help_text="Required for legitimate interest: the interest, stated."
    )
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "key"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(lawful_basis="legitimate_interest")
                | ~models.Q(legitimate_interest=""),
                name="purpose_interest_stated",
            )
        ]

    def __str__(self) -> str:
        return self.name


class RecipientRole(models.TextChoices):
    PROCESSOR = "processor", "Processor (acts on our instructions)"
    CONTROLLER = "controller", "Independent controller"
    AUTHORITY = "authority", "Public authority"
    OTHER = "other", "Other recipient"


class TransferSafeguard(models.TextChoices):
    NOT_NEEDED = "not_needed", "None needed (inside the EEA)"
    ADEQUACY = "adequacy", "Adequacy decision"
    SCC = "scc", "Standard contractual clauses"
    BCR = "bcr", "Binding corporate rules"
    DEROGATION = "derogation", "Derogation (Art. 49)"


class Recipient(TimeStampedModel):
    """A processor or other recipient of personal data, as published (TRN-1)."""

    name = models.CharField(max_length=200)
    address = models.TextField()
    role = models.CharField(max_length=12, choices=RecipientRole.choices)
    service = models.CharField(max_length=200, help_text="What they do for us.")
    data_categories = models.JSONField(default=list, help_text="Registry category keys.")
    purposes = models.ManyToManyField(ProcessingPurpose, blank=True, related_name="recipients")
    country = CountryField()
    transfer_safeguard = models.CharField(
        max_length=12, choices=TransferSafeguard.choices, default=TransferSafeguard.NOT_NEEDED
    )
    safeguard_note = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SupervisoryAuthority(TimeStampedModel):
    """Where people can complain (DSR-6)."""

    name = models.CharField(max_length=200)
    address = models.TextField()
    website = models.URLField(blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    country = CountryField()
    is_lead = models.BooleanField("lead authority", default=False)

    class Meta:
        ordering = ["-is_lead", "name"]
        verbose_name_plural = "supervisory authorities"

    def __str__(self) -> str:
        return self.name


class Disclosure(TimeStampedModel):
    """A disclosure of personal data to a third party, recorded when it happens (DSR-5)."""

    recipient = models.ForeignKey(Recipient, on_delete=models.PROTECT, related_name="disclosures")
    disclosed_at = models.DateTimeField(default=timezone.now, db_index=True)
    categories = models.JSONField(default=list, help_text="Registry category keys.")
    purpose = models.ForeignKey(
        ProcessingPurpose, on_delete=models.PROTECT, related_name="disclosures"
    )
    # California "Shine the Light" (Civ. Code 1798.83) asks about these in particular.
    for_direct_marketing = models.BooleanField(default=False)
    description = models.TextField(help_text="What was handed over, and why.")
    subjects_description = models.CharField(
        max_length=300, blank=True, help_text="Whose data, when not listed one by one."
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-disclosed_at"]

    def __str__(self) -> str:
        return f"{self.recipient} on {self.disclosed_at:%Y-%m-%d}"


class DisclosureSubject(models.Model):
    """A subject whose data a disclosure included (answers DSR-4 per person)."""

    disclosure = models.ForeignKey(Disclosure, on_delete=models.CASCADE, related_name="subjects")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="disclosures",
    )
    email = models.EmailField(max_length=254, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["disclosure", "user"],
                condition=models.Q(user__isnull=False),
                name="disclosure_subject_once",
            )
        ]

    def __str__(self) -> str:
        return f"disclosure {self.disclosure_id}: {self.user_id or self.email}"


class MarketingSuppression(models.Model):
    """An erased person's address, kept only as a keyed hash, so no marketing reaches it.

    The hash is HMAC-SHA256 under SUPPRESSION_KEY of the normalised address: without the
    key nobody can test an address against the list, and the address itself is gone.
    """

    email_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=40, help_text="What put it here (e.g. the erasure).")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"suppressed {self.email_hash[:12]}"
