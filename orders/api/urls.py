"""Orders under /api/v1/ (names prefixed "orders-" inside the "api" namespace)."""

from __future__ import annotations

from django.urls import URLPattern, path

from orders.api import views

urlpatterns: list[URLPattern] = [
    path("orders/", views.OrderListCreateView.as_view(), name="orders-list"),
    path("orders/<str:reference>/", views.OrderDetailView.as_view(), name="orders-detail"),
    path("orders/<str:reference>/submit/", views.OrderSubmitView.as_view(), name="orders-submit"),
    path("orders/<str:reference>/cancel/", views.OrderCancelView.as_view(), name="orders-cancel"),
    path("orders/<str:reference>/accept/", views.OrderAcceptView.as_view(), name="orders-accept"),
    path(
        "orders/<str:reference>/revision/",
        views.OrderRevisionView.as_view(),
        name="orders-revision",
    ),
    path("orders/<str:reference>/pay/", views.OrderPayView.as_view(), name="orders-pay"),
]
