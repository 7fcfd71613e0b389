"""What the images app holds, and when it goes (IMG-4): rules of the retention engine.

No ETA tasks: a periodic sweep (the retention engine) deletes every stored version of
each file, then its row. Only ImageStat (counts, bytes, operation names) survives.
"""

from __future__ import annotations

from datetime import timedelta


def _register() -> None:
    from django.conf import settings
    from django.db.models import Q

    from dsr.registry import Category, Delete, PersonalData, Retention, registry
    from images.models import Photo, Result

    def within(limit: timedelta) -> timedelta:
        # The sweep runs every RETENTION_INTERVAL_MINUTES: start that much earlier, so a
        # file is gone *at the latest* when its limit is reached (IMG-4).
        return max(timedelta(0), limit - timedelta(minutes=settings.RETENTION_INTERVAL_MINUTES))

    def originals_hours() -> timedelta:
        return within(timedelta(hours=settings.ORIGINALS_RETENTION_HOURS))

    registry.register(
        PersonalData(
            model=Photo,
            subject="order__customer",
            subject_email="order__guest_email",
            purpose="orders",
            fields={
                "file": Category.IMAGE,
                "upload": Category.IMAGE,
                "instructions": Category.CONTENT,
            },
            export=("created_at", "position", "instructions", "status", "width", "height"),
            file_fields=("file", "upload"),
            erasure=Delete(),
            retention=Retention(
                clock="order__last_edited_at",
                after="the order's last edit",
                period=originals_hours,
            ),
            description="Original photos uploaded with an order, and their instructions.",
        )
    )
    registry.register(
        PersonalData(
            model=Result,
            subject="order__customer",
            subject_email="order__guest_email",
            purpose="orders",
            fields={"file": Category.IMAGE},
            export=("created_at", "kind", "round", "width", "height", "operations"),
            file_fields=("file",),
            erasure=Delete(),
            retention=(
                Retention(
                    name="delivered",
                    clock="order__delivered_at",
                    after="delivery",
                    period=lambda: within(timedelta(days=settings.RESULTS_RETENTION_DAYS)),
                    filter=Q(order__delivered_at__isnull=False),
                    description="delivered results",
                ),
                Retention(
                    name="undelivered",
                    clock="order__last_edited_at",
                    after="the order's last edit",
                    period=originals_hours,
                    filter=Q(order__delivered_at__isnull=True),
                    description="results of orders never delivered",
                ),
                Retention(
                    name="guest_preview",
                    clock="created_at",
                    after="it was made",
                    period=lambda: within(timedelta(hours=settings.GUEST_PREVIEW_RETENTION_HOURS)),
                    filter=Q(kind="preview", order__paid_at__isnull=True),
                    description="watermarked previews of orders never bought",
                ),
            ),
            description="Edited photos, passport photos and previews made for the customer.",
        )
    )
    registry.exempt("images.ImageStat", "Counts and sizes per day: no image, no person.")


_register()


def _register_portfolio() -> None:
    from django.db.models import Q

    from dsr.registry import Category, Delete, PersonalData, Retention, registry
    from images.models import PortfolioItem

    registry.register(
        PersonalData(
            model=PortfolioItem,
            subject="customer",
            purpose="portfolio",
            fields={
                "before": Category.IMAGE,
                "after": Category.IMAGE,
                "caption": Category.CONTENT,
            },
            export=("caption", "status", "published_at", "withdrawn_at"),
            file_fields=("before", "after"),
            erasure=Delete(),
            retention=Retention(
                clock="withdrawn_at",
                after="the permission is withdrawn or the item unpublished",
                period=lambda: timedelta(0),
                filter=~Q(status="published"),
                description="portfolio copies live only while published with permission",
            ),
            description="Public portfolio copies (before/after), only with permission (IMG-3).",
        )
    )


_register_portfolio()
