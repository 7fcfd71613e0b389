"""Customers' photos (originals), the results made from them, and image usage statistics.

Every stored file has exactly one row that points at it; rows go only after their files
(every version) are deleted, so the retention engine can always find what is left (IMG-4).
Orders are PROTECTed from deletion while these rows exist for the same reason.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from common.models import TimeStampedModel
from orders.models import Order


def random_key() -> str:
    return secrets.token_hex(16)


class PhotoStatus(models.TextChoices):
    PENDING_SCAN = "pending_scan", "Waiting for the malware scan"
    PROCESSING = "processing", "Being prepared"
    READY = "ready", "Ready"
    REJECTED = "rejected", "Rejected"


class ScanVerdict(models.TextChoices):
    PENDING = "pending", "Not scanned yet"
    CLEAN = "clean", "Clean"
    NOT_SCANNED = "not_scanned", "Not scanned (no scanner configured)"


class Photo(TimeStampedModel):
    """One uploaded original.

    ``upload`` holds the raw bytes, quarantined (never served) until the scan and the
    clean re-encode in a worker are done; ``file`` then holds the clean copy and
    ``upload`` is deleted. Both are file fields, so retention deletes whichever exists.
    """

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="photos")
    position = models.PositiveSmallIntegerField(default=0)
    instructions = models.TextField(blank=True, max_length=2000)
    upload = models.FileField(max_length=200, blank=True)
    file = models.FileField(max_length=200, blank=True)
    status = models.CharField(
        max_length=20, choices=PhotoStatus.choices, default=PhotoStatus.PROCESSING
    )
    scan = models.CharField(max_length=12, choices=ScanVerdict.choices)
    size_bytes = models.PositiveIntegerField(default=0)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    source_format = models.CharField(max_length=10, blank=True)
    reject_reason = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A worker's claim; a claim older than the task time limit is stale and may be retaken.
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["order", "position", "id"]

    def __str__(self) -> str:
        return f"Photo {self.position + 1} of {self.order.reference}"


class ResultKind(models.TextChoices):
    RETOUCHED = "retouched", "Retouched photo"
    AUTOMATED = "automated", "Automated edit"
    PASSPORT_DIGITAL = "passport_digital", "Passport photo (digital file)"
    PASSPORT_SHEET = "passport_sheet", "Passport photo (print sheet)"
    PREVIEW = "preview", "Watermarked preview"


class Result(TimeStampedModel):
    """A file made for the customer: by a retoucher, or by a worker under a deterministic key."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="results")
    photo = models.ForeignKey(
        Photo, null=True, blank=True, on_delete=models.SET_NULL, related_name="results"
    )
    kind = models.CharField(max_length=20, choices=ResultKind.choices)
    round = models.PositiveSmallIntegerField(default=0)  # the order's revision round
    file = models.FileField(max_length=200)
    content_type = models.CharField(max_length=40, default="image/jpeg")
    size_bytes = models.PositiveIntegerField(default=0)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    operations = models.JSONField(default=list, blank=True)  # names only: usage statistics
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # False while a retoucher's upload waits for its clean re-encode in a worker.
    ready = models.BooleanField(default=True)

    class Meta:
        ordering = ["order", "round", "id"]
        constraints = [
            # A worker's retry overwrites its own row and file, never adds a second one.
            models.UniqueConstraint(
                fields=["order", "kind", "round", "photo"],
                condition=models.Q(created_by__isnull=True),
                name="result_automated_once",
            )
        ]

    @property
    def filename(self) -> str:
        ext = "png" if self.content_type == "image/png" else "jpg"
        return f"{self.order.reference}-{self.kind}-{self.pk}.{ext}"


class ImageStat(models.Model):
    """What survives deletion (IMG-4): counts, bytes and operations per day, no image, no person."""

    day = models.DateField()
    event = models.CharField(max_length=40)
    count = models.PositiveIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "event"], name="imagestat_day_event")]

    def __str__(self) -> str:
        return f"{self.day} {self.event}: {self.count}"


class PortfolioStatus(models.TextChoices):
    PUBLISHED = "published", "Published"
    UNPUBLISHED = "unpublished", "Unpublished by staff"
    WITHDRAWN = "withdrawn", "Permission withdrawn"


class PortfolioItem(TimeStampedModel):
    """A before/after pair in the public portfolio, made from a delivered result (IMG-3).

    The copies are separate files: the originals and results still go by IMG-4, and the
    copies live only while the customer's permission for that result lives. Withdrawing
    it unpublishes the item in the same transaction and deletes both copies.
    """

    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portfolio_items"
    )
    result = models.ForeignKey(
        Result, null=True, blank=True, on_delete=models.SET_NULL, related_name="portfolio_items"
    )
    # The consent ledger's target for this image ("result:<id>"): outlives the result row.
    consent_target = models.CharField(max_length=100, db_index=True)
    caption = models.CharField(max_length=200, blank=True)
    before = models.FileField(max_length=200, blank=True)
    after = models.FileField(max_length=200, blank=True)
    status = models.CharField(
        max_length=12, choices=PortfolioStatus.choices, default=PortfolioStatus.PUBLISHED
    )
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    published_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-published_at", "-id"]
        permissions = [("publish_portfolio", "Can publish images to the public portfolio")]
        constraints = [
            models.UniqueConstraint(
                fields=["consent_target"],
                condition=models.Q(status="published"),
                name="portfolio_published_once",
            )
        ]

    def __str__(self) -> str:
        return f"Portfolio item {self.pk}"
