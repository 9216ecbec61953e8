"""API keys in the admin: operators see them and revoke them; keys are made on a
workspace's API keys page or with `manage.py create_api_key` (a key's plaintext exists only
in the answer that made it), so the admin cannot add one."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from api.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "workspace",
        "read_only",
        "prefix",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("read_only", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "workspace__slug", "workspace__name")
    list_select_related = ("workspace", "created_by")
    # Never the hash: it is not a secret, but nobody needs to see it.
    fields = (
        "name",
        "workspace",
        "read_only",
        "prefix",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = ("workspace", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys: list[Any] = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            key.revoke()
        self.message_user(request, f"Revoked {len(keys)} key(s).", messages.SUCCESS)
