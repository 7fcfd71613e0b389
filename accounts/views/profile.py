"""My profile: every field editable, email and password changes, profile image, 2FA."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.forms import (
    EmailChangeForm,
    ProfileForm,
    ProfileImageForm,
    TOTPConfirmForm,
    TOTPDisableForm,
)
from accounts.services.twofactor import (
    recovery_codes_reissue,
    totp_device_for,
    totp_disable,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_qr_svg,
)
from accounts.services.users import (
    AccountError,
    user_password_changed,
    user_remove_profile_image,
    user_request_email_change,
    user_resend_verification,
    user_set_profile_image,
    user_update_profile,
)
from accounts.views.common import render_form
from common.http import AuthedRequest, client_ip
from common.imaging import ImageRejected

RECOVERY_SESSION_KEY = "fresh_recovery_codes"


def _profile_context(request: AuthedRequest, **forms: object) -> dict[str, object]:
    return {
        "profile_form": forms.get("profile_form") or ProfileForm(instance=request.user),
        "image_form": forms.get("image_form") or ProfileImageForm(),
    }


def _security_context(request: AuthedRequest, **forms: object) -> dict[str, object]:
    user = request.user
    return {
        "email_form": forms.get("email_form") or EmailChangeForm(user=user),
        "password_form": forms.get("password_form") or PasswordChangeForm(user),
        "has_2fa": totp_device_for(user) is not None,
    }


@login_required
def security(request: AuthedRequest) -> HttpResponse:
    """Email address, password and two-factor authentication, apart from the profile."""
    return render(request, "accounts/security.html", _security_context(request))


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: AuthedRequest) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        form = ProfileForm(request.POST, instance=user)
        if form.is_valid():
            # The ModelForm mutated *user* while validating; the service compares to the DB.
            user.refresh_from_db()
            changed = user_update_profile(
                actor=user, user=user, data=form.cleaned_data, ip_address=client_ip(request)
            )
            messages.success(request, "Profile saved." if changed else "Nothing changed.")
            return redirect("accounts:profile")
        user.refresh_from_db()
        return render_form(
            request, "accounts/profile.html", _profile_context(request, profile_form=form)
        )
    return render(request, "accounts/profile.html", _profile_context(request))


@login_required
@require_POST
def profile_image_upload(request: AuthedRequest) -> HttpResponse:
    form = ProfileImageForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            user_set_profile_image(
                actor=request.user,
                user=request.user,
                upload=form.cleaned_data["image"],
                ip_address=client_ip(request),
            )
        except ImageRejected as exc:
            form.add_error("image", exc.message)
        else:
            messages.success(request, "Profile image saved (location and camera data removed).")
            return redirect("accounts:profile")
    return render_form(request, "accounts/profile.html", _profile_context(request, image_form=form))


@login_required
@require_POST
def profile_image_remove(request: AuthedRequest) -> HttpResponse:
    user_remove_profile_image(actor=request.user, user=request.user, ip_address=client_ip(request))
    messages.success(request, "Profile image removed.")
    return redirect("accounts:profile")


@login_required
@never_cache
def profile_image(request: AuthedRequest) -> HttpResponseBase:
    """Only the owner sees their image: the lookup is request.user, never an id."""
    name = request.user.profile_image.name if request.user.profile_image else ""
    if not name or not default_storage.exists(name):
        raise Http404
    content_type = "image/png" if name.endswith(".png") else "image/jpeg"
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@sensitive_post_parameters("password")
@require_POST
def email_change(request: AuthedRequest) -> HttpResponse:
    form = EmailChangeForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            user_request_email_change(
                actor=request.user,
                user=request.user,
                new_email=form.cleaned_data["new_email"],
                ip_address=client_ip(request),
            )
        except AccountError as exc:
            form.add_error("new_email", exc.message)
        else:
            messages.success(
                request, "We sent a link to the new address. Your email changes once you open it."
            )
            return redirect("accounts:security")
    return render_form(
        request, "accounts/security.html", _security_context(request, email_form=form)
    )


@login_required
@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@require_POST
def password_change(request: AuthedRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST)
    if form.is_valid():
        with transaction.atomic():
            user = form.save()
            user_password_changed(user=user, ip_address=client_ip(request))
        # Keeps this session; every other session of the user ends with the old hash.
        update_session_auth_hash(request, user)
        messages.success(
            request,
            "Password changed. You were logged out everywhere else, "
            "and your API tokens no longer work.",
        )
        return redirect("accounts:security")
    return render_form(
        request, "accounts/security.html", _security_context(request, password_form=form)
    )


@login_required
@require_POST
def resend_verification(request: AuthedRequest) -> HttpResponse:
    user_resend_verification(user=request.user)
    messages.info(request, "We sent the verification link again.")
    return redirect("accounts:profile")


@login_required
@never_cache
def twofactor(request: AuthedRequest) -> HttpResponse:
    codes = request.session.pop(RECOVERY_SESSION_KEY, None)
    return render(
        request,
        "accounts/twofactor.html",
        {
            "device": totp_device_for(request.user),
            "recovery_codes": codes,
            "disable_form": TOTPDisableForm(),
            "remaining_codes": request.user.recovery_codes.filter(used_at__isnull=True).count(),
        },
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def twofactor_setup(request: AuthedRequest) -> HttpResponse:
    form = TOTPConfirmForm(request.POST if request.method == "POST" else None)
    device_id = request.session.get("totp_enrol_device")
    device = (
        TOTPDevice.objects.filter(pk=device_id, user=request.user, confirmed=False).first()
        if device_id
        else None
    )
    if request.method == "POST" and device is not None and form.is_valid():
        try:
            codes = totp_enrolment_confirm(
                actor=request.user,
                user=request.user,
                device_id=device.pk,
                token=form.cleaned_data["code"],
                ip_address=client_ip(request),
            )
        except AccountError as exc:
            form.add_error("code", exc.message)
        else:
            device.refresh_from_db()
            otp_login(request, device)
            request.session.pop("totp_enrol_device", None)
            request.session[RECOVERY_SESSION_KEY] = codes
            messages.success(request, "Two-factor authentication is on.")
            return redirect("accounts:twofactor")
    if device is None or request.method == "GET":
        device = totp_enrolment_start(user=request.user)
        request.session["totp_enrol_device"] = device.pk
    return render_form(
        request,
        "accounts/twofactor_setup.html",
        {
            "form": form,
            "qr_svg": totp_qr_svg(device),
            "secret": _b32(device),
        },
    )


def _b32(device: TOTPDevice) -> str:
    import base64

    return base64.b32encode(device.bin_key).decode().rstrip("=")


@login_required
@sensitive_post_parameters("password")
@require_POST
def twofactor_disable(request: AuthedRequest) -> HttpResponse:
    form = TOTPDisableForm(request.POST)
    if form.is_valid():
        try:
            totp_disable(
                actor=request.user,
                user=request.user,
                code=form.cleaned_data["code"],
                password=form.cleaned_data["password"],
                ip_address=client_ip(request),
            )
        except AccountError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Two-factor authentication is off.")
            return redirect("accounts:twofactor")
    return render(
        request,
        "accounts/twofactor.html",
        {
            "device": totp_device_for(request.user),
            "disable_form": form,
            "remaining_codes": request.user.recovery_codes.filter(used_at__isnull=True).count(),
        },
        status=400,
    )


@login_required
@require_POST
def recovery_codes_new(request: AuthedRequest) -> HttpResponse:
    try:
        codes = recovery_codes_reissue(
            actor=request.user, user=request.user, ip_address=client_ip(request)
        )
    except AccountError as exc:
        messages.error(request, exc.message)
        return redirect("accounts:twofactor")
    request.session[RECOVERY_SESSION_KEY] = codes
    messages.success(request, "New recovery codes made; the old ones no longer work.")
    return redirect("accounts:twofactor")
