"""A URLconf with the sandbox mounted whatever VIDEO_SANDBOX said when dashboard.urls
was first imported; tests select it with @pytest.mark.urls("tests.sandbox_urls")."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("sandbox/v1/", include("sandbox.urls"))]
