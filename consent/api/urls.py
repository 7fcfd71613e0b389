"""The consent app's REST API (/api/v1/): a person's consents, the public privacy data."""

from __future__ import annotations

from django.urls import URLPattern, path

from consent.api import views

urlpatterns: list[URLPattern] = [
    path("consents/", views.ConsentList.as_view(), name="consent-list"),
    path("consents/<slug:key>/grant/", views.ConsentGrant.as_view(), name="consent-grant"),
    path("consents/<slug:key>/withdraw/", views.ConsentWithdraw.as_view(), name="consent-withdraw"),
    path("privacy/policy/", views.PolicyCurrent.as_view(), name="consent-policy"),
    path(
        "privacy/policy/versions/",
        views.PolicyVersionList.as_view(),
        name="consent-policy-versions",
    ),
    path(
        "privacy/policy/versions/<int:number>/",
        views.PolicyVersionDetail.as_view(),
        name="consent-policy-version",
    ),
    path("privacy/register/", views.Register.as_view(), name="consent-register"),
]
