"""The REST API: /api/v1/ (each app's api/urls.py), the OpenAPI schema and its docs."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("v1/", include("accounts.api.urls")),
    path("v1/", include("orders.api.urls")),
    path("v1/", include("images.api.urls")),
    path("v1/", include("consent.api.urls")),
    path("v1/", include("dsr.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI from the sidecar package's static files (no CDN); the split view serves
    # its start-up script as a file, so the strict CSP needs no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]
