"""What the dsr app holds about people (its own tickets), and when it goes."""

from __future__ import annotations

from datetime import timedelta


def _register() -> None:
    from django.conf import settings
    from django.db.models import Q

    from dsr.models import (
        ExportArchive,
        ProcessingRestriction,
        Ticket,
        TicketEvent,
        TicketStatus,
        VerificationChallenge,
    )
    from dsr.registry import Anonymise, Category, Delete, PersonalData, Retention, registry

    finished = [TicketStatus.FULFILLED, TicketStatus.REJECTED, TicketStatus.CLOSED]

    def ticket_years() -> timedelta:
        return timedelta(days=settings.DSR_TICKET_RETENTION_DAYS)

    reduced = {
        "email": "",
        "details": "",
        "identity_note": "",
        "rejection_text": "",
        "outcome_note": "",
    }
    registry.register(
        PersonalData(
            model=Ticket,
            subject="user",
            subject_email="email",
            purpose="rights",
            fields={
                "email": Category.CONTACT,
                "details": Category.CONTENT,
                "identity_note": Category.IDENTITY,
                "rejection_text": Category.CONTENT,
                "outcome_note": Category.CONTENT,
            },
            export=(
                "reference",
                "type",
                "jurisdiction",
                "status",
                "channel",
                "email",
                "details",
                "received_at",
                "first_due",
                "extended_due",
                "extension_reason",
                "rejection_reason",
                "rejection_text",
                "outcome_note",
                "fulfilled_at",
            ),
            # The ticket (and an erasure's receipt) stays as proof the request was
            # answered; what it says about the subject goes.
            erasure=Anonymise(reduced),
            retention=Retention(
                clock="updated_at",
                after="the request was answered",
                period=ticket_years,
                action="anonymise",
                anonymise=reduced,
                filter=Q(status__in=finished),
                description="answered requests are reduced to the proof that they were",
            ),
            description="Data-subject requests and our answers (DSR-1, DSR-2).",
        )
    )
    registry.register(
        PersonalData(
            model=TicketEvent,
            subject="ticket__user",
            subject_email="ticket__email",
            purpose="rights",
            fields={"note": Category.CONTENT},
            export=("created_at", "kind", "from_status", "to_status"),
            erasure=Anonymise({"note": ""}),
            retention=Retention(
                clock="created_at",
                after="the event",
                period=ticket_years,
                action="anonymise",
                anonymise={"note": ""},
                filter=Q(ticket__status__in=finished),
                description="notes on answered requests",
            ),
            description="The history of each request.",
        )
    )
    registry.register(
        PersonalData(
            model=VerificationChallenge,
            subject="ticket__user",
            subject_email="ticket__email",
            purpose="rights",
            fields={"code_hash": Category.CREDENTIALS},
            export=(),
            erasure=Delete(),
            retention=Retention(
                clock="expires_at", after="expiry", period=lambda: timedelta(days=1)
            ),
            description="One-time codes proving a requester controls an email address "
            "(keyed hashes).",
        )
    )
    registry.register(
        PersonalData(
            model=ExportArchive,
            subject="ticket__user",
            subject_email="ticket__email",
            purpose="rights",
            fields={"file": Category.CONTENT},
            export=("status", "size", "ready_at", "expires_at", "downloads"),
            file_fields=("file",),
            erasure=Delete(),
            retention=Retention(
                clock="expires_at",
                after="its link expires",
                period=lambda: timedelta(0),
                description="export archives (and their files)",
            ),
            description="Export archives made for access and portability requests.",
        )
    )
    registry.register(
        PersonalData(
            model=ProcessingRestriction,
            subject="user",
            subject_email="email",
            purpose="rights",
            fields={"email": Category.CONTACT, "reason": Category.CONTENT},
            export=("created_at", "reason", "lifted_at", "lift_reason"),
            erasure=Delete(),
            description="Restrictions of processing asked for by the subject (Art. 18).",
        )
    )
    registry.exempt("dsr.ErasureStep", "Counts per step of an erasure; no personal data.")


def _register_breach() -> None:
    from dsr.models import BreachNotice, IncidentRecipient
    from dsr.registry import Anonymise, Category, Delete, PersonalData, erased_email, registry

    registry.register(
        PersonalData(
            model=IncidentRecipient,
            subject="user",
            subject_email="email",
            purpose="breach",
            fields={"email": Category.CONTACT, "sent_at": Category.SECURITY},
            export=("incident", "status", "sent_at"),
            # The register must still count who was told: the row stays, the address goes.
            erasure=Anonymise({"email": erased_email, "user": None}),
            description="Who was notified of a personal-data breach, and when (BRE-1).",
        )
    )
    registry.register(
        PersonalData(
            model=BreachNotice,
            subject="user",
            purpose="breach",
            fields={"acknowledged_at": Category.SECURITY},
            export=("incident", "created_at", "acknowledged_at"),
            erasure=Delete(),
            description="In-site breach notices and whether they were acknowledged.",
        )
    )
    registry.exempt(
        "dsr.Incident", "The breach register: written by staff about the incident, not a person."
    )


_register()
_register_breach()
