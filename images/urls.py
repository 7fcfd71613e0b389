from django.urls import path

from images import views, views_portfolio

app_name = "images"

urlpatterns = [
    path("photo/<int:photo_id>/", views.photo_open, name="photo"),
    path("result/<int:result_id>/", views.result_open, name="result"),
    path("file/<str:token>/", views.file_serve, name="file"),
    # The public portfolio (IMG-3).
    path("portfolio/", views_portfolio.portfolio_page, name="portfolio"),
    path(
        "portfolio/<int:item_id>/<str:side>/",
        views_portfolio.portfolio_image,
        name="portfolio_image",
    ),
    path(
        "portfolio/permission/<int:result_id>/",
        views_portfolio.portfolio_permission,
        name="portfolio_permission",
    ),
    path("portfolio/withdraw/", views_portfolio.portfolio_withdraw, name="portfolio_withdraw"),
]
