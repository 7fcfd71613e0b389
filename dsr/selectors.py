"""Reads of the dsr app. Customer-facing lookups are scoped to their owner (404 otherwise)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from accounts.models import User
from dsr.models import ExportArchive, ProcessingRestriction, Ticket, TicketEvent


def tickets_for_user(*, user: User) -> QuerySet[Ticket]:
    return Ticket.objects.filter(user=user).order_by("-received_at")


def ticket_get_for_user(*, user: User, reference: str) -> Ticket:
    """The user's own ticket; another subject's reference is simply not found."""
    ticket = Ticket.objects.filter(user=user, reference=reference).first()
    if ticket is None or not user.is_authenticated:
        raise Http404("No such request.")
    return ticket


def ticket_events_for_subject(*, ticket: Ticket, kinds: Iterable[str]) -> QuerySet[TicketEvent]:
    """The part of a ticket's history its subject sees (*kinds*: never staff notes)."""
    return ticket.events.filter(kind__in=list(kinds)).order_by("created_at", "id")


def export_archive_for_ticket(*, ticket: Ticket) -> ExportArchive | None:
    """The export archive of a ticket already scoped to its subject (None: not started)."""
    return ExportArchive.objects.filter(ticket=ticket).first()


def _active_restrictions() -> QuerySet[ProcessingRestriction]:
    return ProcessingRestriction.objects.filter(lifted_at__isnull=True)


def processing_restricted(*, user: User | None = None, email: str = "") -> bool:
    """Art. 18 (DSR-1): may nothing be done with this subject's data right now?

    Every processing path (editing tasks, marketing sends, portfolio publication,
    audiences) asks this before acting; a restriction keyed by email covers the
    account with that address too, and the reverse.
    """
    cond = Q()
    if user is not None and user.pk is not None:
        cond |= Q(user_id=user.pk)
        if user.email:
            cond |= Q(email__iexact=user.email)
    if email:
        cond |= Q(email__iexact=email) | Q(user__email__iexact=email)
    if not cond:
        return False
    return _active_restrictions().filter(cond).exists()


def restricted_user_exists(user_ref: str = "pk") -> Exists:
    """An ``Exists()`` for batch queries: ``.exclude(restricted_user_exists("user_id"))``."""
    return Exists(_active_restrictions().filter(user_id=OuterRef(user_ref)))


def restricted_email_exists(email_ref: str = "email") -> Exists:
    return Exists(_active_restrictions().filter(email__iexact=OuterRef(email_ref)))
