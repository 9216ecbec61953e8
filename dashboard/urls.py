from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard import accounts
from teams import hook_views

# django.contrib.auth.urls, with the login page and password reset of our own: the reset
# pages answer 404 unless email is configured (see dashboard.accounts).
account_urls = [
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password_reset/", accounts.PasswordResetView.as_view(), name="password_reset"),
    path("password_reset/done/", accounts.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "reset/<uidb64>/<token>/", accounts.PasswordResetConfirmView.as_view(), name="password_reset_confirm"
    ),
    path("reset/done/", accounts.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include(account_urls)),
    # The JSON API (bearer keys, no session, no CSRF) and its keys' page.
    path("api/v1/", include("api.urls")),
    path("", include("api.key_urls")),
    # A provider's pushed events: signed with the connection's secret, no session (teams.hook_views).
    path("hooks/<str:token>/", hook_views.receive, name="provider_hook"),
    path("", include("teams.urls")),
    path("", include("notifications.urls")),
    path("", include("videos.urls")),
]

if settings.VIDEO_SANDBOX:
    urlpatterns.insert(0, path("sandbox/v1/", include("sandbox.urls")))
