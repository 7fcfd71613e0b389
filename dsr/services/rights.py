"""The other rights: rectification, restriction, objection, withdrawal of consent,
automated decisions, Shine the Light (DSR-1, DSR-4, CON-2).

``rights_start`` receives every verified ticket that is neither an export nor an
erasure. What can be done at once is done at once (restriction, objection to direct
marketing, withdrawal of consent, Shine the Light); what needs a person's judgement
waits for staff in AWAITING_APPROVAL (rectification, other objections, the human review
of an automated decision), and the subject is told so. Every change goes through the
owning app's services (consent ledger, marketing opt-out, portfolio, accounts), so each
carries that app's own evidence and audit rows; this module decides and records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AuditAction, User
from accounts.services import audit_log_write, notification_create
from common.http import RequestMeta
from dsr.models import (
    Channel,
    ProcessingRestriction,
    RejectionReason,
    RequestType,
    Ticket,
    TicketStatus,
)
from dsr.services.tickets import (
    TicketRefused,
    ticket_audit,
    ticket_fulfil,
    ticket_note,
    ticket_notify_subject,
    ticket_reject,
    ticket_transition,
)

APPROVE = "dsr.approve_ticket"
LIFT = "dsr.change_processingrestriction"
DECIDABLE = frozenset(
    {TicketStatus.VERIFIED, TicketStatus.IN_PROGRESS, TicketStatus.AWAITING_APPROVAL}
)


# --- Dispatch -------------------------------------------------------------------------------
def rights_start(*, ticket: Ticket, actor: User | None) -> None:
    """Fulfil a verified ticket of the other rights, or hand it to staff (see module doc)."""
    starters: dict[str, Callable[..., Any]] = {
        RequestType.RESTRICTION: restriction_apply,
        RequestType.OBJECTION: _objection_start,
        RequestType.WITHDRAW_CONSENT: consent_withdraw_all,
        RequestType.AUTOMATED: _automated_start,
        RequestType.RECTIFICATION: _rectification_start,
        RequestType.SHINE_THE_LIGHT: shine_the_light_answer,
    }
    start = starters.get(ticket.type)
    if start is None:
        raise TicketRefused(f"{ticket.get_type_display()} requests are not fulfilled here.")
    start(ticket=ticket, actor=actor)


# --- Helpers --------------------------------------------------------------------------------
def _subject(ticket: Ticket) -> tuple[User | None, str]:
    user = ticket.user
    email = (ticket.email or (user.email if user is not None else "")).strip().lower()
    return user, email


def _require(actor: User | None, perm: str, what: str) -> User:
    if actor is None or not actor.is_staff or not actor.has_perm(perm):
        raise TicketRefused(f"You do not have permission to {what}.")
    return actor


def _require_decidable(ticket: Ticket, type: str) -> Ticket:
    ticket.refresh_from_db()
    if ticket.type != type:
        raise TicketRefused(f"{ticket.reference} is not a {RequestType(type).label} request.")
    if ticket.status not in DECIDABLE:
        raise TicketRefused(
            f"{ticket.reference} is {ticket.get_status_display().lower()}: nothing to decide."
        )
    return ticket


def _await(ticket: Ticket, *, actor: User | None, note: str, **fields: Any) -> Ticket:
    """Hand the ticket to staff and tell the subject it waits for a person's decision."""
    ticket = ticket_transition(
        ticket=ticket, to=TicketStatus.AWAITING_APPROVAL, actor=actor, note=note, **fields
    )
    ticket_notify_subject(ticket=ticket, event="awaiting")
    return ticket


def _consent_method(ticket: Ticket, actor: User | None) -> tuple[Any, User | None]:
    """How the ledger records a withdrawal the subject asked for: STAFF (with the staff
    member) when staff entered it from a letter or call, else the subject's own form."""
    from consent.models import ConsentMethod

    if ticket.channel == Channel.STAFF:
        return ConsentMethod.STAFF, ticket.entered_by or actor
    return ConsentMethod.FORM, actor


# --- Restriction (Art. 18) ------------------------------------------------------------------
RESTRICTION_STOPS = (
    "While the restriction stands we keep your data but do not use it: no work is done "
    "on your orders or photos (anything waiting stays exactly as it is), you get no "
    "marketing email, nothing of yours is published in our portfolio, and you are left "
    "out of the customer groups we select for marketing. We still store your data, "
    "answer your requests and send the messages the law or your orders require."
)


def _restrict(ticket: Ticket, *, actor: User | None) -> tuple[ProcessingRestriction, int]:
    """The flag every processing path checks, at once; live portfolio items go down."""
    from images.services.portfolio import portfolio_take_down_subject

    user, email = _subject(ticket)
    restriction = ProcessingRestriction.objects.filter(
        ticket=ticket, lifted_at__isnull=True
    ).first()
    if restriction is None:
        restriction = ProcessingRestriction.objects.create(
            user=user,
            email=email,
            ticket=ticket,
            reason=f"{ticket.get_type_display()} request {ticket.reference}",
        )
        ticket_audit(ticket, AuditAction.DSR_RESTRICTED, actor=actor, restriction=restriction.pk)
    account = user or (User.objects.filter(email__iexact=email).first() if email else None)
    taken_down = 0
    if account is not None:
        taken_down = portfolio_take_down_subject(
            user=account, actor=actor, reason="processing restricted"
        )
    return restriction, taken_down


def restriction_apply(*, ticket: Ticket, actor: User | None) -> ProcessingRestriction:
    """Restrict the subject's processing now (protective: before any review) and fulfil."""
    with transaction.atomic():
        restriction, taken_down = _restrict(ticket, actor=actor)
        note = "Processing of your personal data is now restricted. " + RESTRICTION_STOPS
        if taken_down:
            note += f" We took down {taken_down} of your images from our portfolio."
        note += " We will tell you when the restriction is lifted, and why."
        ticket_fulfil(
            ticket=ticket,
            actor=actor,
            note=note,
            outcome={"restriction": restriction.pk, "portfolio_taken_down": taken_down},
        )
    return restriction


def restriction_lift(
    *, restriction: ProcessingRestriction, actor: User, reason: str
) -> ProcessingRestriction:
    """Staff lift a restriction (with the reason the subject is told); held work resumes."""
    from images.services.restriction import orders_resume_after_restriction

    reason = reason.strip()
    if not reason:
        raise TicketRefused("Give the reason for lifting the restriction: the subject is told it.")
    _require(actor, LIFT, "lift a restriction of processing")
    with transaction.atomic():
        locked = ProcessingRestriction.objects.select_for_update().get(pk=restriction.pk)
        if locked.lifted_at is not None:
            raise TicketRefused("This restriction was already lifted.")
        locked.lifted_at = timezone.now()
        locked.lifted_by = actor
        locked.lift_reason = reason
        locked.save(update_fields=["lifted_at", "lifted_by", "lift_reason", "updated_at"])
        ticket = locked.ticket
        audit_log_write(
            actor=actor,
            action=AuditAction.DSR_RESTRICTION_LIFTED,
            subject=locked.user,
            detail={"restriction": locked.pk, "ticket": ticket.reference if ticket else ""},
        )
        if ticket is not None:
            ticket_note(ticket=ticket, actor=actor, note=f"Restriction lifted: {reason}")
            ticket_notify_subject(ticket=ticket, event="restriction_lifted")
        elif locked.user is not None and locked.user.is_active:
            notification_create(
                user=locked.user,
                title="The restriction of processing of your data was lifted",
                body=reason,
            )
        orders_resume_after_restriction(user=locked.user, email=locked.email)
    restriction.refresh_from_db()
    return restriction


# --- Objection (Art. 21) --------------------------------------------------------------------
def _objection_start(*, ticket: Ticket, actor: User | None) -> None:
    if ticket.direct_marketing:
        objection_marketing_honour(ticket=ticket, actor=actor)
        return
    _await(
        ticket,
        actor=actor,
        note="Objection to processing based on legitimate interests: staff decide, with reasons.",
    )


def objection_marketing_honour(*, ticket: Ticket, actor: User | None) -> Ticket:
    """Art. 21(2)-(3): direct marketing stops at once, without any weighing (CON-2)."""
    from consent.models import AudienceMember
    from consent.services.marketing import marketing_optout

    user, email = _subject(ticket)
    method, by = _consent_method(ticket, actor)
    with transaction.atomic():
        result = marketing_optout(
            email=email,
            user=user,
            method=method,
            actor=by,
            note=f"Objection to direct marketing, request {ticket.reference}",
        )
        members = Q(user__email__iexact=email) if email else Q(pk__in=[])
        if user is not None:
            members |= Q(user=user)
        left, _ = AudienceMember.objects.filter(members).delete()
        note = (
            "Your objection to direct marketing is recorded and applies from now on: we "
            "send you no more marketing email (every marketing permission of yours is "
            "withdrawn and any newsletter subscription ended), and you are no longer in any "
            "customer group we select for marketing. Messages about your account and "
            "orders are not marketing and continue."
        )
        return ticket_fulfil(
            ticket=ticket,
            actor=actor,
            note=note,
            outcome={
                "marketing_withdrawn": result.withdrawn,
                "subscriptions_ended": result.subscribers,
                "audiences_left": left,
            },
        )


def objection_decide(*, ticket: Ticket, actor: User, uphold: bool, reason: str) -> Ticket:
    """Staff decide an objection to legitimate-interest processing, with the reason.

    Upheld: the processing must stop for this person, and the software has no switch per
    purpose for it, so the subject's processing is restricted (the one flag every
    processing path honours) until staff lift it. Dismissed: compelling legitimate
    grounds override the objection (Art. 21(1)); the subject is told them and may complain.
    """
    reason = reason.strip()
    if not reason:
        raise TicketRefused("Give the reason for the decision: the subject is told it.")
    _require(actor, APPROVE, "decide objections")
    ticket = _require_decidable(ticket, RequestType.OBJECTION)
    if not uphold:
        return ticket_reject(
            ticket=ticket,
            actor=actor,
            reason=RejectionReason.OTHER,
            text=f"Compelling legitimate grounds override your objection: {reason}",
        )
    with transaction.atomic():
        restriction, taken_down = _restrict(ticket, actor=actor)
        note = (
            f"We upheld your objection. {reason}\n\nSo that the processing you objected to "
            f"stops, processing of your personal data is now restricted. {RESTRICTION_STOPS}"
        )
        if taken_down:
            note += f" We took down {taken_down} of your images from our portfolio."
        return ticket_fulfil(
            ticket=ticket,
            actor=actor,
            note=note,
            outcome={"decision": "upheld", "reason": reason, "restriction": restriction.pk},
        )


# --- Withdrawal of consent (Art. 7(3)) --------------------------------------------------------
def _ledger_subjects(user: User | None, email: str) -> list[str]:
    from consent.models import subject_key

    keys = [subject_key(email=a) for a in {email, user.email if user else ""} if a]
    if user is not None:
        keys.append(subject_key(user_id=user.pk))
    return keys


def consent_withdraw_all(*, ticket: Ticket, actor: User | None) -> Ticket:
    """Withdraw every consent of the subject still given, each through its own path:
    marketing by the one opt-out (CON-2), portfolio images by the portfolio (which takes
    them down), anything else in the ledger. Cookie choices belong to a browser: the
    subject is told where to change them."""
    from consent.models import ConsentPurpose, ConsentState, PurposeKind
    from consent.services.ledger import consent_record
    from consent.services.marketing import marketing_optout
    from images.services.portfolio import portfolio_permission_withdraw

    user, email = _subject(ticket)
    method, by = _consent_method(ticket, actor)
    why = f"Withdrawal of consent, request {ticket.reference}"
    withdrawn: dict[str, dict[str, Any]] = {}
    taken_down = 0
    with transaction.atomic():
        granted = list(
            ConsentState.objects.filter(subject__in=_ledger_subjects(user, email), granted=True)
            .exclude(purpose__kind=PurposeKind.COOKIE)
            .select_related("purpose", "user")
            .order_by("purpose__name", "target")
        )
        marketing_optout(email=email, user=user, method=method, actor=by, note=why)
        for state in granted:
            purpose = state.purpose
            if purpose.key == ConsentPurpose.PORTFOLIO and state.user is not None:
                taken_down += portfolio_permission_withdraw(
                    user=state.user, target=state.target, meta=RequestMeta()
                )
            elif not purpose.is_marketing:
                consent_record(
                    purpose=purpose.key,
                    granted=False,
                    method=method,
                    actor=by,
                    user=state.user if state.subject.startswith("u:") else None,
                    email=state.email if state.subject.startswith("e:") else "",
                    target=state.target,
                    note=why,
                )
            entry = withdrawn.setdefault(
                purpose.key, {"purpose": purpose.key, "name": purpose.name, "count": 0}
            )
            entry["count"] += 1
        items = list(withdrawn.values())
        return ticket_fulfil(
            ticket=ticket,
            actor=actor,
            note=_withdrawal_note(items, taken_down),
            outcome={"withdrawn": items, "portfolio_taken_down": taken_down},
        )


def _withdrawal_note(items: list[dict[str, Any]], taken_down: int) -> str:
    if items:
        lines = ["We recorded the withdrawal of every consent you had given us:"]
        for item in items:
            count = f" ({item['count']} items)" if item["count"] > 1 else ""
            lines.append(f"- {item['name']}{count}")
        if taken_down:
            lines.append(f"We took down {taken_down} of your images from our portfolio.")
    else:
        lines = ["You had no consent with us that was still given."]
    lines.append(
        "We also recorded that you want no marketing email. A withdrawal does not make "
        "what was done before it unlawful. Cookie choices are kept by each browser: change "
        "them on the cookie settings page in every browser you use."
    )
    return "\n".join(lines)


# --- Automated decisions (Art. 22) ----------------------------------------------------------
def automated_explanation() -> str:
    """What the passport pipeline decides by itself, and what it does not (in plain words),
    built from the document table and the pipeline's own limits and messages."""
    from images.operations.passport import MAX_TILT_DEGREES, MAX_UPSCALE, MESSAGES
    from images.passport_specs import DOCUMENT_SPECS

    sizes = "\n".join(
        f"  - {spec.label}: head {spec.head_min_mm:.0f} to {spec.head_max_mm:.0f} mm "
        f"of a {spec.height_mm:.0f} mm high photo"
        for spec in DOCUMENT_SPECS.values()
    )
    refusals = "\n".join(f"  - {message}" for message in MESSAGES.values())
    return (
        "How our passport and visa photos are made automatically\n\n"
        "When you upload a photo for a passport or visa photo order, a program, not a "
        "person, does this:\n"
        "1. It reads the image (JPEG, PNG or WebP), and refuses a file it cannot read or "
        "one with too many pixels.\n"
        "2. It looks for faces in the photo. Exactly one face must be found.\n"
        "3. It checks that the head is upright: a head tilted by more than "
        f"{MAX_TILT_DEGREES:g} degrees (the line between the eyes) is refused.\n"
        "4. It estimates the height of your head from the face it found and cuts the "
        "photo so that the head fills the share the document's rules ask for:\n"
        f"{sizes}\n"
        "5. It refuses the photo if the face is so small that the cut would have to be "
        f"enlarged more than {MAX_UPSCALE:g} times, or if the head is too close to an edge.\n"
        "6. It scales the cut to the document's size, converts the colours to the "
        "standard sRGB space and, for online applications, makes the file fit the size "
        "limit. It does not retouch: authorities refuse altered photos.\n"
        "7. It makes a watermarked preview, the digital file and a print sheet. After you "
        "pay, the files are delivered without a person checking them. Your uploaded photo "
        "is deleted once the files are made.\n\n"
        "The only decision the program takes is to make the photo or to refuse it, with "
        "one of these reasons shown to you:\n"
        f"{refusals}\n\n"
        "What the program does not do: it does not identify you or compare your face "
        "with any other photo or database, it keeps no measurements of your face, it does "
        "not check the background or your expression, and it cannot decide whether an "
        "authority will accept the photo. It decides nothing else about you: not prices, "
        "not access to our services. A member of our staff reviews the result you asked "
        "about and tells you what they found."
    )


def _automated_start(*, ticket: Ticket, actor: User | None) -> None:
    _await(
        ticket,
        actor=actor,
        note="Explanation of the automated checks given; waiting for the human review.",
        outcome={"explanation": automated_explanation()},
    )


def automated_review_complete(*, ticket: Ticket, actor: User, outcome: str) -> Ticket:
    """A person reviewed the automated result: fulfil with the explanation and the review."""
    outcome = outcome.strip()
    if not outcome:
        raise TicketRefused("Write what the human review found: the subject is told it.")
    _require(actor, APPROVE, "record the human review")
    ticket = _require_decidable(ticket, RequestType.AUTOMATED)
    explanation = ticket.outcome.get("explanation") or automated_explanation()
    note = f"{explanation}\n\nThe human review of your result, by our staff:\n{outcome}"
    return ticket_fulfil(
        ticket=ticket,
        actor=actor,
        note=note,
        outcome={
            "explanation": explanation,
            "human_review": outcome,
            "reviewed_at": timezone.now().isoformat(),
        },
    )


# --- Rectification (Art. 16) ------------------------------------------------------------------
def rectifiable_fields() -> tuple[str, ...]:
    """Account fields a rectification may set: the registry's USER_FIELDS that are plain
    text or choice fields of the profile form (never the email, which has its own
    verified change; nor the password, files or timestamps)."""
    from accounts.models import PROFILE_FIELDS
    from accounts.privacy import USER_FIELDS

    return tuple(name for name in USER_FIELDS if name in PROFILE_FIELDS)


def _rectification_start(*, ticket: Ticket, actor: User | None) -> None:
    _await(
        ticket,
        actor=actor,
        note="The subject's statement of what is wrong is in the details: staff check it "
        "and apply the correction.",
    )


def _validated(user: User, changes: dict[str, str]) -> User:
    """The profile form's own rules (and the model's full_clean) on the corrected values."""
    from accounts.forms import ProfileForm

    data: dict[str, Any] = {}
    for name in ProfileForm.Meta.fields:
        value = getattr(user, name)
        data[name] = getattr(value, "code", value) or ""
    data.update(changes)
    form = ProfileForm(data=data, instance=user)
    if not form.is_valid():
        problems = [
            f"{form.fields[name].label or name if name in form.fields else name}: {err}"
            for name, errors in form.errors.items()
            for err in errors
        ]
        raise TicketRefused("The correction is not valid. " + " ".join(problems))
    return form.save(commit=False)


def _label(name: str) -> str:
    field = User._meta.get_field(name)
    return str(getattr(field, "verbose_name", name))


def rectification_apply(
    *, ticket: Ticket, actor: User, changes: dict[str, str], note: str = ""
) -> Ticket:
    """Apply staff-approved corrections to the subject's account, audited, and fulfil."""
    from accounts.services.staff import user_update_by_staff

    _require(actor, APPROVE, "apply corrections")
    ticket = _require_decidable(ticket, RequestType.RECTIFICATION)
    if ticket.user_id is None:
        raise TicketRefused(
            "This request has no account to correct: answer it with a note or reject it."
        )
    allowed = rectifiable_fields()
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise TicketRefused(
            f"These cannot be corrected here: {', '.join(unknown)}. "
            f"Correctable fields: {', '.join(allowed)}."
        )
    changes = {name: str(value).strip() for name, value in changes.items()}
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=ticket.user_id)
        before = {name: str(getattr(user, name) or "") for name in changes}
        user = _validated(user, changes)
        changed = sorted(n for n in changes if str(getattr(user, n) or "") != before[n])
        if not changed:
            raise TicketRefused("The values given are the ones already held: nothing to correct.")
        user_update_by_staff(actor=actor, user=user, changed_fields=changed, ip_address=None)
        ticket_audit(ticket, AuditAction.DSR_RECTIFIED, actor=actor, fields=changed)
        labels = [_label(n) for n in changed]
        text = f"We corrected your {', '.join(labels)} as you asked."
        if note.strip():
            text += f"\n\n{note.strip()}"
        return ticket_fulfil(ticket=ticket, actor=actor, note=text, outcome={"fields": changed})


# --- California Shine the Light (Civ. Code 1798.83, DSR-4) ------------------------------------
def shine_the_light_answer(*, ticket: Ticket, actor: User | None) -> Ticket:
    """Answer at once from the disclosure records of the preceding calendar year.

    A second request in the same year (flagged at intake) is answered too, and the flag
    stays for staff to see: the law lets us decline it, but the answer costs nothing,
    is built from the same records and is never wrong, so nobody has to decide.
    """
    from consent.services.register import disclosures_for_subject
    from dsr.registry import Category

    user, email = _subject(ticket)
    year = timezone.localtime(ticket.received_at).year - 1
    recipients: dict[int, dict[str, Any]] = {}
    for disclosure in disclosures_for_subject(
        user=user, email=email, year=year, direct_marketing=True
    ):
        entry = recipients.setdefault(
            disclosure.recipient_id,
            {
                "recipient": disclosure.recipient.name,
                "address": disclosure.recipient.address,
                "categories": set(),
            },
        )
        entry["categories"].update(disclosure.categories)
    answer = [
        {
            **entry,
            "categories": sorted(
                Category(c).label if c in Category.values else c for c in entry["categories"]
            ),
        }
        for entry in sorted(recipients.values(), key=lambda e: e["recipient"])
    ]
    return ticket_fulfil(
        ticket=ticket,
        actor=actor,
        note=_shine_the_light_note(ticket, year, answer),
        outcome={"year": year, "disclosures": answer},
    )


def _shine_the_light_note(ticket: Ticket, year: int, answer: list[dict[str, Any]]) -> str:
    if not answer:
        text = (
            f"In {year} we disclosed none of your personal data to third parties for their "
            "direct marketing."
        )
    else:
        blocks = [
            f"{entry['recipient']}\n{entry['address']}\n"
            f"Categories of personal data: {', '.join(entry['categories'])}"
            for entry in answer
        ]
        text = (
            f"In {year} we disclosed personal data of yours to these third parties for "
            "their direct marketing:\n\n" + "\n\n".join(blocks)
        )
    if ticket.repeat_of is not None:
        text += (
            f"\n\nYou already asked this year ({ticket.repeat_of.reference}). The law "
            "requires one answer a year; we answer again all the same."
        )
    return text
