from __future__ import annotations

from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The built-in fake provider. Installed only when VIDEO_SANDBOX is on (see
    dashboard/settings.py), so a production database never gets its table."""

    name = "sandbox"
    verbose_name = "Sandbox provider"
