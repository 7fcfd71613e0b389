"""What the consent app holds about people, and why (registry declarations)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta


def _register() -> None:
    from django.conf import settings
    from django.db.models import Q

    from consent.models import (
        AudienceMember,
        CampaignSend,
        ConsentEvent,
        ConsentState,
        DisclosureSubject,
        PolicyAcknowledgement,
        PolicyNoticeSend,
        Subscriber,
    )
    from dsr.registry import Anonymise, Category, Delete, PersonalData, Retention, registry

    def days(setting: str, extra: int = 0) -> Callable[[], timedelta]:
        # Read at run time, so a changed setting changes the rule and the privacy page.
        return lambda: timedelta(days=getattr(settings, setting) + extra)

    registry.register(
        PersonalData(
            model=ConsentEvent,
            subject="user",
            subject_email="email",
            subject_note="Anonymous visitors' cookie choices are found by the id in their "
            "consent cookie.",
            purpose="consent_records",
            fields={
                "email": Category.CONTACT,
                "visitor": Category.NETWORK,
                "target": Category.PREFERENCES,
                "granted": Category.PREFERENCES,
                "ip_address": Category.NETWORK,
                "user_agent": Category.NETWORK,
            },
            export=(
                "created_at",
                "purpose",
                "target",
                "granted",
                "method",
                "policy_version",
                "ip_address",
                "user_agent",
                "note",
            ),
            erasure=Delete(),
            retention=(
                Retention(
                    name="superseded",
                    clock="created_at",
                    after="it was recorded",
                    period=days("CONSENT_EVIDENCE_DAYS"),
                    filter=Q(current_for__isnull=True),
                    description="evidence no longer deciding anything (a later choice replaced it)",
                ),
                Retention(
                    name="visitor",
                    clock="created_at",
                    after="it was recorded",
                    period=days("CONSENT_COOKIE_DAYS", 30),
                    filter=Q(user__isnull=True, email=""),
                    description="anonymous browsers' cookie choices, once the cookie has expired",
                ),
            ),
            description="The consent ledger: each consent given or withdrawn, with its evidence.",
        )
    )
    registry.register(
        PersonalData(
            model=ConsentState,
            subject="user",
            subject_email="email",
            subject_note="Anonymous visitors' states are keyed by their consent cookie's id.",
            purpose="consent_records",
            fields={"email": Category.CONTACT, "granted": Category.PREFERENCES},
            export=("purpose", "target", "granted", "updated_at"),
            erasure=Delete(),
            retention=(
                Retention(
                    name="withdrawn",
                    clock="updated_at",
                    after="the withdrawal",
                    period=days("CONSENT_EVIDENCE_DAYS"),
                    filter=Q(granted=False),
                    description="withdrawn consents (no consent and a withdrawn one mean the same)",
                ),
                Retention(
                    name="visitor",
                    clock="updated_at",
                    after="the choice",
                    period=days("CONSENT_COOKIE_DAYS"),
                    filter=Q(user__isnull=True, email=""),
                    description="anonymous browsers' cookie choices, when the cookie expires",
                ),
            ),
            description="The current answer of each consent.",
        )
    )
    registry.register(
        PersonalData(
            model=Subscriber,
            subject="user",
            subject_email="email",
            purpose="marketing",
            fields={
                "email": Category.CONTACT,
                "status": Category.PREFERENCES,
                "requested_at": Category.USAGE,
                "confirmed_at": Category.PREFERENCES,
                "unsubscribed_at": Category.PREFERENCES,
            },
            export=("email", "status", "requested_at", "confirmed_at", "unsubscribed_at"),
            erasure=Delete(),
            retention=(
                Retention(
                    name="unconfirmed",
                    clock="requested_at",
                    after="the request",
                    period=days("MARKETING_CONFIRM_DAYS"),
                    filter=Q(status="pending"),
                    description="subscriptions never confirmed",
                ),
                Retention(
                    name="unsubscribed",
                    clock="unsubscribed_at",
                    after="unsubscribing",
                    period=days("UNSUBSCRIBE_LINK_DAYS"),
                    filter=Q(status="unsubscribed"),
                    description="once no unsubscribe link sent to them still works",
                ),
            ),
            description="Newsletter subscriptions (double opt-in).",
        )
    )
    registry.register(
        PersonalData(
            model=CampaignSend,
            subject="subscriber__user",
            subject_email="subscriber__email",
            purpose="marketing",
            fields={"sent_at": Category.USAGE, "status": Category.USAGE},
            export=("campaign", "status", "sent_at"),
            erasure=Delete(),
            retention=Retention(
                clock="campaign__started_at",
                after="the campaign was sent",
                period=days("MARKETING_SEND_RETENTION_DAYS"),
            ),
            description="Which newsletter was sent to whom, and when.",
        )
    )
    registry.register(
        PersonalData(
            model=AudienceMember,
            subject="user",
            purpose="marketing",
            fields={"activity_at": Category.USAGE},
            export=("audience", "activity_at"),
            erasure=Delete(),
            retention=Retention(
                clock="activity_at",
                after="the site use that qualified them",
                period=days("MARKETING_AUDIENCE_RETENTION_DAYS"),
            ),
            description="Marketing audiences built from site use (CON-6).",
        )
    )
    registry.register(
        PersonalData(
            model=PolicyNoticeSend,
            subject="user",
            purpose="communication",
            fields={"sent_at": Category.USAGE, "status": Category.USAGE},
            export=("version", "status", "sent_at"),
            erasure=Delete(),
            description="Emails telling account holders about a policy change.",
        )
    )
    registry.register(
        PersonalData(
            model=PolicyAcknowledgement,
            subject="user",
            purpose="communication",
            fields={"created_at": Category.USAGE},
            export=("version", "created_at"),
            erasure=Delete(),
            description="Which policy notices an account holder has seen.",
        )
    )
    registry.register(
        PersonalData(
            model=DisclosureSubject,
            subject="user",
            subject_email="email",
            purpose="accountability",
            fields={"email": Category.CONTACT},
            export=("disclosure",),
            erasure=Anonymise({"user": None, "email": ""}),
            description="Whose data a recorded disclosure included.",
        )
    )
    registry.exempt("consent.Campaign", "Staff who wrote and started it; no customer data.")
    registry.exempt("consent.PolicyVersion", "Staff who published it; no customer data.")
    registry.exempt(
        "consent.Disclosure", "What was disclosed to whom; the subjects are DisclosureSubject."
    )


_register()
