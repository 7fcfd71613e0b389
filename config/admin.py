"""The admin site: staff enter only through the site's login, with a second factor."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode


class SiteAdmin(admin.AdminSite):
    site_header = f"{settings.SITE_NAME} administration"
    site_title = settings.SITE_NAME
    index_title = "Support and privacy"

    def has_permission(self, request: HttpRequest) -> bool:
        user: Any = request.user
        return bool(
            user.is_active and user.is_staff and getattr(user, "is_verified", lambda: False)()
        )

    def password_change(  # type: ignore[override]  # a redirect, not a page
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The site's own (audited) password change, not the admin's unaudited one."""
        return redirect("accounts:security")

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """Send staff to the site's login (password, then TOTP) or to 2FA enrolment."""
        next_url = request.GET.get("next") or reverse("admin:index")
        user: Any = request.user  # django-otp adds is_verified() at runtime
        if user.is_authenticated and user.is_staff and not user.is_verified():
            has_device = user.totpdevice_set.filter(confirmed=True).exists()
            if has_device:
                messages.info(request, "Confirm your second factor to enter the admin.")
                return redirect(
                    f"{reverse('accounts:login_2fa_step_up')}?{urlencode({'next': next_url})}"
                )
            messages.warning(
                request, "Staff must turn on two-factor authentication to use the admin."
            )
            return redirect("accounts:twofactor")
        if user.is_authenticated and not user.is_staff:
            # The site's login would send a logged-in customer straight back here (a loop).
            raise PermissionDenied
        return redirect(f"{reverse('accounts:login')}?{urlencode({'next': next_url})}")
