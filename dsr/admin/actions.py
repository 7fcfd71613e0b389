"""The buttons of a ticket's admin page: who may press each, when it shows, which service runs.

Each action is a form and one service call. The admin view (tickets.py) checks the
permission, validates the form and shows the service's refusal as a message; nothing
here changes a ticket except through dsr.services.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accounts.models import User
from dsr.admin import forms as f
from dsr.models import EXPORT_TYPES, RequestType, Ticket, TicketStatus
from dsr.services.tickets import (
    ticket_assign,
    ticket_close,
    ticket_extend,
    ticket_fulfil,
    ticket_note,
    ticket_reject,
    ticket_verify,
)

PROCESS = "dsr.process_ticket"
APPROVE = "dsr.approve_ticket"

# Verified and not yet answered: where staff decisions happen.
ACTIVE = frozenset(
    {TicketStatus.VERIFIED, TicketStatus.IN_PROGRESS, TicketStatus.AWAITING_APPROVAL}
)
# Their fulfilment is automatic (archive, erasure steps) or has its own decision form.
_NO_PLAIN_FULFIL = EXPORT_TYPES | {RequestType.ERASURE, RequestType.AUTOMATED}


@dataclass(frozen=True)
class TicketAction:
    name: str
    label: str  # the button and the panel's title
    permission: str
    form: type[f.TicketActionForm]
    shown: Callable[[Ticket], bool]
    # (ticket, actor, cleaned form) -> the success message
    run: Callable[[Ticket, User, f.TicketActionForm], str]
    danger: bool = False


def _verify(ticket: Ticket, actor: User, form: f.TicketActionForm) -> str:
    data = form.cleaned_data
    ticket_verify(ticket=ticket, actor=actor, method=data["method"], note=data["note"])
    return f"{ticket.reference}: identity recorded; fulfilment has started."


def _assign(ticket: Ticket, actor: User, form: f.TicketActionForm) -> str:
    assignee = form.cleaned_data["assignee"]
    ticket_assign(ticket=ticket, assignee=assignee, actor=actor)
    return f"{ticket.reference} assigned to {assignee.email if assignee else 'nobody'}."


def _extend(ticket: Ticket, actor: User, form: f.TicketActionForm) -> str:
    ticket = ticket_extend(ticket=ticket, actor=actor, reason=form.cleaned_data["reason"])
    return (
        f"{ticket.reference} now due on {ticket.due_on:%Y-%m-%d}; "
        "the subject is told the new date and the reason."
    )


def _reject(ticket: Ticket, actor: User, form: f.TicketActionForm) -> str:
    data = form.cleaned_data
    ticket_reject(ticket=ticket, actor=actor, reason=data["reason"], text=data["text"])
    return f"{ticket.reference} rejected; the subject is told the reason."


def _approve_erasure(ticket: Ticket, actor: User, form: f.TicketActionForm) -> str:
    from dsr.services.erasure import erasure_approve

    erasure_approve(ticket=ticket, actor=actor)
    return f"{ticket.reference}: erasure approved; it runs now."


def _rectify(ticket: Ticket, actor: User, form: f.TicketActionForm) -> str:
    from dsr.services.rights import rectification_apply

    assert isinstance(form, f.RectificationForm)
    changes = form.changes()
    rectification_apply(ticket=ticket, actor=actor, changes=changes, note=form.cleaned_data["note"])
    return f"{ticket.reference}: corrected {', '.join(sorted(changes))}; the subject is told."


def _objection(ticket: Ticket, actor: User, form: f.TicketActionForm) -> str:
    from dsr.services.rights import objection_decide

    data = form.cleaned_data
    uphold = data["decision"] == "uphold"
    objection_decide(ticket=ticket, actor=actor, uphold=uphold, reason=data["reason"])
    return f"{ticket.reference}: objection {'upheld' if uphold else 'dismissed'}."


def _automated(ticket: Ticket, actor: User, form: f.TicketActionForm) -> str:
    from dsr.services.rights import automated_review_complete

    automated_review_complete(ticket=ticket, actor=actor, outcome=form.cleaned_data["outcome"])
    return f"{ticket.reference}: human review recorded; the subject is told the result."


def _fulfil(ticket: Ticket, actor: User, form: f.TicketActionForm) -> str:
    ticket_fulfil(ticket=ticket, actor=actor, note=form.cleaned_data["note"])
    return f"{ticket.reference} fulfilled; the subject is told."


def _close(ticket: Ticket, actor: User, form: f.TicketActionForm) -> str:
    ticket_close(ticket=ticket, actor=actor, note=form.cleaned_data["note"])
    return f"{ticket.reference} closed."


def _note(ticket: Ticket, actor: User, form: f.TicketActionForm) -> str:
    ticket_note(ticket=ticket, actor=actor, note=form.cleaned_data["note"])
    return "Note added."


def _plain_fulfil(ticket: Ticket) -> bool:
    if ticket.status not in ACTIVE or ticket.type in _NO_PLAIN_FULFIL:
        return False
    # An objection to other processing is decided (upheld or dismissed), with its reason.
    return not (ticket.type == RequestType.OBJECTION and not ticket.direct_marketing)


def _has_account(ticket: Ticket) -> bool:
    return ticket.user is not None and ticket.user.is_active


ACTIONS: dict[str, TicketAction] = {
    a.name: a
    for a in [
        TicketAction(
            "verify",
            "Verify identity",
            PROCESS,
            f.VerifyForm,
            lambda t: t.status in (TicketStatus.RECEIVED, TicketStatus.AWAITING_VERIFICATION),
            _verify,
        ),
        TicketAction(
            "approve_erasure",
            "Approve the erasure (orders finished or cancelled)",
            APPROVE,
            f.ConfirmForm,
            lambda t: t.type == RequestType.ERASURE and t.status == TicketStatus.AWAITING_APPROVAL,
            _approve_erasure,
        ),
        TicketAction(
            "rectify",
            "Apply the correction",
            APPROVE,
            f.RectificationForm,
            lambda t: (
                t.type == RequestType.RECTIFICATION and t.status in ACTIVE and _has_account(t)
            ),
            _rectify,
        ),
        TicketAction(
            "objection",
            "Decide the objection",
            APPROVE,
            f.ObjectionForm,
            lambda t: (
                t.type == RequestType.OBJECTION and not t.direct_marketing and t.status in ACTIVE
            ),
            _objection,
        ),
        TicketAction(
            "automated_review",
            "Record the human review",
            APPROVE,
            f.AutomatedReviewForm,
            lambda t: t.type == RequestType.AUTOMATED and t.status in ACTIVE,
            _automated,
        ),
        TicketAction(
            "fulfil",
            "Fulfil with an answer",
            APPROVE,
            f.FulfilForm,
            _plain_fulfil,
            _fulfil,
        ),
        TicketAction(
            "extend",
            "Extend the deadline",
            APPROVE,
            f.ExtendForm,
            lambda t: (
                t.is_open and t.extended_due is None and t.type != RequestType.SHINE_THE_LIGHT
            ),
            _extend,
        ),
        TicketAction("assign", "Assign", PROCESS, f.AssignForm, lambda t: t.is_open, _assign),
        TicketAction(
            "reject", "Reject", APPROVE, f.RejectForm, lambda t: t.is_open, _reject, danger=True
        ),
        TicketAction(
            "close",
            "Close",
            PROCESS,
            f.CloseForm,
            lambda t: t.status in (TicketStatus.FULFILLED, TicketStatus.REJECTED),
            _close,
        ),
        TicketAction("note", "Add a note", PROCESS, f.NoteForm, lambda t: True, _note),
    ]
}


def actions_for(ticket: Ticket, user: Any) -> list[tuple[TicketAction, f.TicketActionForm]]:
    """The panels shown on the change page: applicable now and permitted to *user*."""
    return [
        (action, action.form(ticket=ticket, prefix=action.name))
        for action in ACTIONS.values()
        if action.shown(ticket) and user.has_perm(action.permission)
    ]
