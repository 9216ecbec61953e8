"""The configured provider: one place that turns settings into a client."""

from __future__ import annotations

from django.conf import settings

from videos.client import VideoAPIClient


def configured_client(*, pool_size: int = 4) -> VideoAPIClient:
    """A client for VIDEO_API_BASE_URL with VIDEO_API_KEY and the configured limits."""
    return VideoAPIClient(
        settings.VIDEO_API_BASE_URL,
        settings.VIDEO_API_KEY,
        timeout=settings.VIDEO_API_TIMEOUT,
        max_response_bytes=settings.VIDEO_API_MAX_RESPONSE_BYTES,
        pool_size=pool_size,
        max_rps=settings.VIDEO_API_MAX_RPS,
    )
