"""Sign-up, verification, login with an optional second factor, logout, password reset."""

from __future__ import annotations

import time
from typing import Any

from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import SetPasswordForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import urlencode
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from accounts.forms import LoginForm, PasswordResetRequestForm, SecondFactorForm, SignupForm
from accounts.models import AuditAction, User, normalize_email
from accounts.services import audit_log_write
from accounts.services.twofactor import second_factor_check, totp_device_for
from accounts.services.users import (
    AccountError,
    password_reset_request,
    user_password_changed,
    user_register,
    user_verify_email,
)
from accounts.tokens import VerificationError
from accounts.views.common import render_form, safe_next
from common.http import client_ip

PENDING_KEY = "pre_2fa_user_id"
PENDING_AT_KEY = "pre_2fa_at"
PENDING_TRIES_KEY = "pre_2fa_tries"
PENDING_MAX_AGE = 300
SECOND_FACTOR_MAX_TRIES = 5


@sensitive_post_parameters("password", "password_confirm")
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:profile")
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_under_13():
            # ACC-5: refuse, and keep nothing that was typed in.
            return render(request, "accounts/signup_refused.html", status=403)
        if form.is_valid():
            data = form.cleaned_data
            try:
                user_register(
                    email=data["email"],
                    password=data["password"],
                    full_name=data["full_name"],
                    country=data["country"],
                    ip_address=client_ip(request),
                )
            except AccountError as exc:
                form.add_error("email", exc.message)
            else:
                return redirect("accounts:signup_done")
    return render_form(request, "accounts/signup.html", {"form": form})


def signup_done(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/signup_done.html")


def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user = user_verify_email(token=token, ip_address=client_ip(request))
    except VerificationError as exc:
        return render(request, "accounts/verify_failed.html", {"message": exc.message}, status=400)
    messages.success(request, f"Thank you: {user.email} is confirmed.")
    return redirect("accounts:profile" if request.user.is_authenticated else "accounts:login")


def lockout_response(
    request: HttpRequest, response: Any = None, credentials: Any = None
) -> HttpResponse:
    return render(request, "accounts/locked_out.html", status=429)


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request, reverse("accounts:profile"))
    if request.user.is_authenticated and request.method == "GET":
        return redirect(next_url)
    form = LoginForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        ip = client_ip(request)
        email = normalize_email(form.cleaned_data["email"])
        user = authenticate(request, email=email, password=form.cleaned_data["password"])
        if user is None:
            known = User.objects.filter(email=email).first()
            if getattr(request, "axes_locked_out", False):
                audit_log_write(
                    actor=None, action=AuditAction.LOCKOUT, subject=known, ip_address=ip
                )
                return lockout_response(request)
            audit_log_write(
                actor=None, action=AuditAction.LOGIN_FAILED, subject=known, ip_address=ip
            )
            form.add_error(None, "The email address or password is not correct.")
        elif totp_device_for(user) is not None:
            request.session.cycle_key()
            request.session[PENDING_KEY] = user.pk
            request.session[PENDING_AT_KEY] = int(time.time())
            request.session[PENDING_TRIES_KEY] = 0
            return redirect(f"{reverse('accounts:login_2fa')}?{urlencode({'next': next_url})}")
        else:
            with transaction.atomic():
                auth_login(request, user)
                audit_log_write(actor=user, action=AuditAction.LOGIN, subject=user, ip_address=ip)
            return redirect(next_url)
    return render_form(request, "accounts/login.html", {"form": form, "next": next_url})


def _pending_user(request: HttpRequest) -> User | None:
    if request.user.is_authenticated:
        return request.user  # step-up: logged in, not yet verified with the second factor
    uid, at = request.session.get(PENDING_KEY), request.session.get(PENDING_AT_KEY, 0)
    if not uid or time.time() - at > PENDING_MAX_AGE:
        return None
    return get_user_model().objects.filter(pk=uid, is_active=True).first()


@require_http_methods(["GET", "POST"])
def login_2fa(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request, reverse("accounts:profile"))
    user = _pending_user(request)
    if user is None or totp_device_for(user) is None:
        messages.info(request, "Please log in again.")
        return redirect("accounts:login")
    form = SecondFactorForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        ip = client_ip(request)
        device = second_factor_check(user=user, code=form.cleaned_data["code"], ip_address=ip)
        if device is None:
            tries = request.session.get(PENDING_TRIES_KEY, 0) + 1
            request.session[PENDING_TRIES_KEY] = tries
            audit_log_write(
                actor=None,
                action=AuditAction.LOGIN_FAILED,
                subject=user,
                ip_address=ip,
                detail={"step": "second_factor"},
            )
            if tries >= SECOND_FACTOR_MAX_TRIES:
                request.session.flush()
                messages.error(request, "Too many wrong codes. Log in again.")
                return redirect("accounts:login")
            form.add_error("code", "That code is not right.")
        else:
            with transaction.atomic():
                if not request.user.is_authenticated:
                    auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                otp_login(request, device)
                request.session.pop(PENDING_KEY, None)
                audit_log_write(
                    actor=user,
                    action=AuditAction.LOGIN,
                    subject=user,
                    ip_address=ip,
                    detail={"second_factor": True},
                )
            return redirect(next_url)
    return render_form(request, "accounts/login_2fa.html", {"form": form, "next": next_url})


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        audit_log_write(
            actor=request.user,
            action=AuditAction.LOGOUT,
            subject=request.user,
            ip_address=client_ip(request),
        )
    auth_logout(request)
    messages.info(request, "You are logged out.")
    return redirect("home")


@require_http_methods(["GET", "POST"])
def password_reset(request: HttpRequest) -> HttpResponse:
    form = PasswordResetRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        # Same answer for known and unknown addresses: nothing to learn from it.
        password_reset_request(email=form.cleaned_data["email"], ip_address=client_ip(request))
        return redirect("accounts:password_reset_done")
    return render_form(request, "accounts/password_reset.html", {"form": form})


def password_reset_done(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/password_reset_done.html")


class PasswordResetConfirm(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def dispatch(self, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().dispatch(*args, **kwargs)
        if not getattr(self, "validlink", False) and response.status_code == 200:
            response.status_code = 400  # a tampered, used or expired link is bad input
        return response

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        with transaction.atomic():
            response = super().form_valid(form)
            user_password_changed(user=form.user, ip_address=client_ip(self.request), reset=True)
        return response

    def form_invalid(self, form: SetPasswordForm) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=400)


def password_reset_complete(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/password_reset_complete.html")
