from django.urls import path

from images import views

app_name = "images"

urlpatterns = [
    path("photo/<int:photo_id>/", views.photo_open, name="photo"),
    path("result/<int:result_id>/", views.result_open, name="result"),
    path("file/<str:token>/", views.file_serve, name="file"),
]
