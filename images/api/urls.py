"""Photos, results and passport photos under /api/v1/ (names prefixed inside "api")."""

from __future__ import annotations

from django.urls import URLPattern, path

from images.api import passport, views

urlpatterns: list[URLPattern] = [
    path("orders/<str:reference>/photos/", views.OrderPhotosView.as_view(), name="images-photos"),
    path(
        "orders/<str:reference>/results/",
        views.OrderResultsView.as_view(),
        name="images-results",
    ),
    path(
        "passport/documents/",
        passport.DocumentListView.as_view(),
        name="passport-documents",
    ),
    path("passport/orders/", passport.PassportCreateView.as_view(), name="passport-orders"),
    path(
        "passport/orders/<str:reference>/preview/",
        passport.PassportPreviewView.as_view(),
        name="passport-preview",
    ),
    path(
        "passport/orders/<str:reference>/files/",
        passport.PassportFilesView.as_view(),
        name="passport-files",
    ),
]
