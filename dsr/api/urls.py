"""The dsr app's REST API (/api/v1/): privacy requests (DSR-1, DSR-2)."""

from __future__ import annotations

from django.urls import URLPattern, path

from dsr.api import views

# Fixed paths first: a reference ("DSR-...") never collides with them.
urlpatterns: list[URLPattern] = [
    path(
        "privacy/requests/",
        views.RequestListCreateView.as_view(),
        name="privacy-requests",
    ),
    path(
        "privacy/requests/public/",
        views.PublicRequestView.as_view(),
        name="privacy-requests-public",
    ),
    path(
        "privacy/requests/public/<str:token>/verify/",
        views.PublicVerifyView.as_view(),
        name="privacy-requests-public-verify",
    ),
    path(
        "privacy/requests/public/<str:token>/resend/",
        views.PublicResendView.as_view(),
        name="privacy-requests-public-resend",
    ),
    path(
        "privacy/requests/<str:reference>/",
        views.RequestDetailView.as_view(),
        name="privacy-requests-detail",
    ),
    path(
        "privacy/requests/<str:reference>/export/",
        views.RequestExportView.as_view(),
        name="privacy-requests-export",
    ),
]
