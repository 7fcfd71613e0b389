"""The consent app's pages, one module per area; each defines its own ``urlpatterns``."""
