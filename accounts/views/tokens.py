"""My profile > API tokens: list, create (with a fresh second factor), revoke."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, user_login_failed
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts.selectors import api_token_get_for_user, api_tokens_for_user
from accounts.services.tokens import (
    NAME_MAX_LENGTH,
    ApiTokenRefused,
    api_token_create,
    api_token_revoke,
)
from accounts.services.twofactor import second_factor_check, totp_device_for
from accounts.views.auth import lockout_response
from accounts.views.common import render_form
from common.http import AuthedRequest, client_ip


class ApiTokenForm(forms.Form):
    # A token outlives this session and survives logout: making one asks again for what
    # a login asks (the password, and a current code when 2FA is on).
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    name = forms.CharField(
        label="Name",
        max_length=NAME_MAX_LENGTH,
        required=False,
        help_text="Your label, e.g. the app or computer that will use it.",
    )
    code = forms.CharField(
        label="Current code from your authenticator app (or a recovery code)",
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}),
    )

    def __init__(self, *args: object, needs_code: bool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if not needs_code:
            del self.fields["code"]
        else:
            self.fields["code"].required = True


def _page(
    request: AuthedRequest, form: ApiTokenForm, *, secret: str = "", status: int | None = None
) -> HttpResponse:
    context = {
        "form": form,
        "tokens": list(api_tokens_for_user(user=request.user)),
        "secret": secret,
        "has_2fa": "code" in form.fields,
        "ttl_days": settings.REST_KNOX["TOKEN_TTL"].days,
    }
    return render_form(request, "accounts/api_tokens.html", context, status=status)


@login_required
@never_cache
@sensitive_post_parameters("password", "code")
@require_http_methods(["GET", "POST"])
def api_tokens(request: AuthedRequest) -> HttpResponse:
    user = request.user
    needs_code = totp_device_for(user) is not None
    if request.method != "POST":
        return _page(request, ApiTokenForm(needs_code=needs_code))
    form = ApiTokenForm(request.POST, needs_code=needs_code)
    if not form.is_valid():
        return _page(request, form)
    ip = client_ip(request)
    # Through authenticate(), so django-axes counts a wrong password and refuses while the
    # account is locked out, exactly as the login page does.
    password = form.cleaned_data["password"]
    if authenticate(request, email=user.email, password=password) is None:
        if getattr(request, "axes_locked_out", False):
            return lockout_response(request)
        form.add_error("password", "That password is not right.")
        return _page(request, form)
    # A fresh second factor, even if the login had one.
    if (
        needs_code
        and second_factor_check(user=user, code=form.cleaned_data["code"], ip_address=ip) is None
    ):
        # Counted as a failed sign-in, as on the API: guessing codes ends in a lockout.
        user_login_failed.send(sender=__name__, credentials={"email": user.email}, request=request)
        form.add_error("code", "That code is not right.")
        return _page(request, form)
    try:
        _token, secret = api_token_create(user=user, name=form.cleaned_data["name"], ip_address=ip)
    except ApiTokenRefused as exc:
        form.add_error(None, exc.message)
        return _page(request, form)
    # The secret is shown in this answer only (never stored in the session or a redirect).
    return _page(request, ApiTokenForm(needs_code=needs_code), secret=secret)


@login_required
@require_POST
def api_token_revoke_view(request: AuthedRequest, token_key: str) -> HttpResponse:
    token = api_token_get_for_user(user=request.user, token_key=token_key)
    api_token_revoke(actor=request.user, token=token, ip_address=client_ip(request))
    messages.success(request, f"Token {token.token_key}… revoked: it no longer works.")
    return redirect("accounts:api_tokens")
