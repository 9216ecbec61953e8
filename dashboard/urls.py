from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("videos.urls")),
]

if settings.VIDEO_SANDBOX:
    urlpatterns.insert(0, path("sandbox/v1/", include("videos.sandbox_urls")))
