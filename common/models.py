from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class FanoutStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class FanoutItem(models.Model):
    """One message to one recipient of a fan-out (a campaign, a policy notice, a breach).

    The row exists once per recipient (each concrete model has a unique constraint), and
    its status moves pending -> sending (claimed by one worker's batch, under ``claim``)
    -> sent / skipped / failed. A batch whose worker died is found by its stale
    ``claimed_at`` and recovered from the worker's journal (common/fanout.py).
    """

    status = models.CharField(
        max_length=10, choices=FanoutStatus.choices, default=FanoutStatus.PENDING
    )
    claim = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        abstract = True
