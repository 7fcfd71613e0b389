"""Usage statistics that survive image deletion (IMG-4): counts and bytes, never an image."""

from __future__ import annotations

from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from images.models import ImageStat


def image_stat_add(*, event: str, size: int = 0, count: int = 1, day: date | None = None) -> None:
    day = day or timezone.now().date()
    bump = {"count": F("count") + count, "bytes_total": F("bytes_total") + size}
    if ImageStat.objects.filter(day=day, event=event).update(**bump):
        return
    try:
        with transaction.atomic():
            ImageStat.objects.create(day=day, event=event, count=count, bytes_total=size)
    except IntegrityError:  # another worker created it first
        ImageStat.objects.filter(day=day, event=event).update(**bump)
