"""Transactional emails of the accounts app. No marketing content ever goes in these."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import User
from accounts.tokens import make_verification_token


def _send(template: str, to: str, context: dict[str, object]) -> None:
    context = {"site_name": settings.SITE_NAME, "site_url": settings.SITE_URL, **context}
    subject = render_to_string(f"emails/{template}_subject.txt", context).strip()
    body = render_to_string(f"emails/{template}.txt", context)
    EmailMessage(subject=subject, body=body, to=[to]).send()


def verification_email_send(user: User) -> None:
    target = user.pending_email or user.email
    token = make_verification_token(user, target)
    link = settings.SITE_URL + reverse("accounts:verify_email", args=[token])
    hours = settings.EMAIL_VERIFICATION_MAX_AGE // 3600
    _send(
        "verify_email",
        target,
        {"user": user, "link": link, "hours": hours, "is_change": bool(user.pending_email)},
    )


def email_change_notice_send(user: User) -> None:
    _send("email_change_notice", user.email, {"user": user})


def password_reset_email_send(user: User) -> None:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = settings.SITE_URL + reverse("accounts:password_reset_confirm", args=[uid, token])
    _send(
        "password_reset",
        user.email,
        {"user": user, "link": link, "minutes": settings.PASSWORD_RESET_TIMEOUT // 60},
    )
