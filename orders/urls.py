from django.urls import path

from orders import views, views_payments

app_name = "orders"

urlpatterns = [
    path("", views.order_list, name="list"),
    path("new/retouch/", views.retouch_new, name="retouch_new"),
    path("passport/", views.passport_new, name="passport_new"),
    path("guest/<str:token>/", views.guest_access, name="guest_access"),
    path("pay/test/<str:reference>/", views_payments.test_gateway_pay, name="test_gateway_pay"),
    path("webhooks/<str:gateway>/", views_payments.gateway_webhook, name="webhook"),
    path("<str:reference>/", views.order_detail, name="detail"),
    path("<str:reference>/photos/", views.photos_upload, name="photos_upload"),
    path("<str:reference>/photos/<int:photo_id>/note/", views.photo_note, name="photo_note"),
    path("<str:reference>/submit/", views.order_submit_view, name="submit"),
    path("<str:reference>/cancel/", views.order_cancel_view, name="cancel"),
    path("<str:reference>/revision/", views.order_revision_view, name="revision"),
    path("<str:reference>/accept/", views.order_accept_view, name="accept"),
    path("<str:reference>/pay/", views.order_pay, name="pay"),
    path("<str:reference>/paid/", views.order_paid, name="paid"),
    path("<str:reference>/invoice/<int:number>/", views.invoice_view, name="invoice"),
]
