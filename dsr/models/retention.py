from __future__ import annotations

from django.db import models
from django.utils import timezone


class RetentionRunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    OK = "ok", "Completed"
    PARTIAL = "partial", "Completed with errors"
    FAILED = "failed", "Failed"


class RetentionRun(models.Model):
    """The report of one retention rule's run: what was removed, how long, what failed."""

    rule = models.CharField(max_length=100, db_index=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=RetentionRunStatus.choices, default=RetentionRunStatus.RUNNING
    )
    cutoff = models.DateTimeField()
    rows_removed = models.PositiveBigIntegerField(default=0)
    rows_anonymised = models.PositiveBigIntegerField(default=0)
    files_removed = models.PositiveIntegerField(default=0)
    rows_kept_for_retry = models.PositiveIntegerField(default=0)
    overdue_after = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Rows still older than the limit after the run."
    )
    errors = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.rule} at {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class RetentionClaim(models.Model):
    """Which period a rule last ran for: two beat schedulers cannot both run it."""

    rule = models.CharField(max_length=100, unique=True)
    period_start = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.rule}: {self.period_start:%Y-%m-%d %H:%M}"


class PersonalDataMap(models.Model):
    """No table: the admin entry (and permission) for the read-only registry page."""

    class Meta:
        managed = False
        verbose_name = "personal-data registry"
        verbose_name_plural = "personal-data registry"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return "personal-data registry"
