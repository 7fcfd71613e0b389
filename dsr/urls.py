from django.urls import path

from dsr.views import account, breach, download, public

app_name = "dsr"

# Fixed paths first: a reference ("DSR-...") never collides with them.
urlpatterns = [
    path("", account.requests_list, name="requests"),
    path("close-account/", account.close_account, name="close_account"),
    path("public/", public.public_request, name="public_request"),
    path("public/verify/<str:token>/", public.public_verify, name="public_verify"),
    path("public/link/<str:token>/", public.public_verify_link, name="public_verify_link"),
    path("download/<str:token>/", download.archive_download, name="download"),
    path("breach/<int:notice_id>/", breach.breach_notice, name="breach_notice"),
    path("breach/<int:notice_id>/ack/", breach.breach_ack, name="breach_ack"),
    path("<str:reference>/", account.ticket_detail, name="ticket"),
]
