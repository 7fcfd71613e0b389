from consent.views import account, cookies, marketing, policy

app_name = "consent"

# Each area's module lists its own pages (cookies, my privacy, newsletter, policy history).
urlpatterns = [
    *cookies.urlpatterns,
    *account.urlpatterns,
    *marketing.urlpatterns,
    *policy.urlpatterns,
]
