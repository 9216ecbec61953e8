from __future__ import annotations

from django.apps import AppConfig


class VideosConfig(AppConfig):
    name = "videos"
    verbose_name = "Video tasks"

    def ready(self) -> None:
        from videos import checks  # noqa: F401  (registers the configuration checks)
