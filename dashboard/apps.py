from __future__ import annotations

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The project package as an app, so its start-up checks are registered."""

    name = "dashboard"

    def ready(self) -> None:
        from dashboard import checks  # noqa: F401  (registers the configuration checks)
