"""The pages of a workspace: its people, invitations, settings and audit trail
(teams.views), and its provider connections (teams.connection_urls)."""

from __future__ import annotations

from django.urls import include, path

from teams import connection_urls

app_name = "teams"

urlpatterns = [
    path("w/<slug:slug>/connections/", include(connection_urls.urlpatterns)),
]
