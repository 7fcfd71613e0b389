from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from consent.views import policy as consent_policy

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("privacy/", consent_policy.privacy_policy, name="privacy"),
    path("privacy/requests/", include("dsr.urls")),
    path("accounts/", include("accounts.urls")),
    path("orders/", include("orders.urls")),
    path("images/", include("images.urls")),
    path("consent/", include("consent.urls")),
    path("api/", include(("config.api_urls", "api"), namespace="api")),
    path("admin/", admin.site.urls),
]

handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
