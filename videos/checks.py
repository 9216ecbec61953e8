"""Start-up checks: a missing or malformed provider configuration is reported by
`manage.py check` and every command, before the poller wastes a pass on it."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register


@register("videos")
def check_provider_configuration(app_configs, **kwargs) -> list:
    base_url = settings.VIDEO_API_BASE_URL
    if not base_url:
        return [
            Warning(
                "VIDEO_API_BASE_URL is not set: the poller has no provider to ask.",
                hint="Set it to the API root including the version, e.g. https://gateway.example.com/v1.",
                id="videos.W001",
            )
        ]
    problems = []
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(
            Error(
                "VIDEO_API_BASE_URL must be an http(s) URL with a host.",
                hint="For example https://gateway.example.com/v1.",
                id="videos.E001",
            )
        )
    elif parts.query or parts.fragment or parts.username or parts.password:
        problems.append(
            Error(
                "VIDEO_API_BASE_URL must not carry a query, a fragment or credentials.",
                hint="Put the key in VIDEO_API_KEY; it is sent as a Bearer token.",
                id="videos.E002",
            )
        )
    if not settings.VIDEO_API_KEY:
        problems.append(
            Warning(
                "VIDEO_API_KEY is not set: most providers will answer 401.",
                id="videos.W002",
            )
        )
    return problems
