from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from notifications.models import Attempt, NotificationChannel


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    # The target and secret are encrypted and not editable here: only their hint shows.
    list_display = ["__str__", "workspace", "kind", "target_hint", "enabled", "failing_since"]
    list_filter = ["kind", "enabled"]
    readonly_fields = ["target_hint", "disabled_reason", "failing_since", "last_success_at"]

    # Made on the workspace's page, where the URL is checked and the secret shown once.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    fields = [
        "workspace",
        "kind",
        "name",
        "target_hint",
        "events",
        "only_mine",
        "enabled",
        *readonly_fields[1:],
    ]


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ["at", "channel", "event_kind", "ok", "status_code", "error", "duration_ms"]
    list_filter = ["ok", "event_kind"]
