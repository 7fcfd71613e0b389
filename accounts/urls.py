from django.urls import path

from accounts.views import auth, notifications, profile, tokens

app_name = "accounts"

urlpatterns = [
    path("signup/", auth.signup, name="signup"),
    path("signup/done/", auth.signup_done, name="signup_done"),
    path("verify/<str:token>/", auth.verify_email, name="verify_email"),
    path("login/", auth.login, name="login"),
    path("login/2fa/", auth.login_2fa, name="login_2fa"),
    path("login/2fa/step-up/", auth.login_2fa, name="login_2fa_step_up"),
    path("logout/", auth.logout, name="logout"),
    path("password-reset/", auth.password_reset, name="password_reset"),
    path("password-reset/sent/", auth.password_reset_done, name="password_reset_done"),
    path(
        "reset/<uidb64>/<token>/",
        auth.PasswordResetConfirm.as_view(),
        name="password_reset_confirm",
    ),
    path("reset/done/", auth.password_reset_complete, name="password_reset_complete"),
    path("profile/", profile.profile, name="profile"),
    path("security/", profile.security, name="security"),
    path("profile/image/", profile.profile_image, name="profile_image"),
    path("profile/image/upload/", profile.profile_image_upload, name="profile_image_upload"),
    path("profile/image/remove/", profile.profile_image_remove, name="profile_image_remove"),
    path("profile/email/", profile.email_change, name="email_change"),
    path("profile/password/", profile.password_change, name="password_change"),
    path("profile/verify/resend/", profile.resend_verification, name="resend_verification"),
    path("profile/tokens/", tokens.api_tokens, name="api_tokens"),
    path(
        "profile/tokens/<str:token_key>/revoke/",
        tokens.api_token_revoke_view,
        name="api_token_revoke",
    ),
    path("2fa/", profile.twofactor, name="twofactor"),
    path("2fa/setup/", profile.twofactor_setup, name="twofactor_setup"),
    path("2fa/disable/", profile.twofactor_disable, name="twofactor_disable"),
    path("2fa/recovery-codes/", profile.recovery_codes_new, name="recovery_codes_new"),
    path("notifications/", notifications.inbox, name="notifications"),
    path("notifications/read-all/", notifications.mark_all_read, name="notifications_read_all"),
    path(
        "notifications/<int:notification_id>/read/",
        notifications.mark_read,
        name="notification_read",
    ),
]
