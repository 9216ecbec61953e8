"""Fetching a task's video (or thumbnail) on a user's behalf, for the download proxy.

The provider's direct link is used while it lives; otherwise the provider's content
endpoint, with the key, which never leaves the server. Every fetch goes through
SafeFetcher: a link found in an API answer is untrusted input, and must not make the
server reach into its own network.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings

from videos.models import VideoTask
from videos.provider import configured_client
from videos.safe_fetch import Download, SafeFetcher

VARIANTS = {
    "video": ("mp4", "video/mp4"),
    "thumbnail": ("jpg", "image/jpeg"),
    "spritesheet": ("jpg", "image/jpeg"),
}


def provider_host() -> str:
    return urlsplit(settings.VIDEO_API_BASE_URL).hostname or ""


def fetcher() -> SafeFetcher:
    return SafeFetcher(
        trusted_hosts={provider_host()} - {""},
        max_bytes=settings.VIDEO_DOWNLOAD_MAX_BYTES,
        deadline=settings.VIDEO_DOWNLOAD_DEADLINE,
    )


def open_remote(task: VideoTask, variant: str = "video") -> Download:
    """Open the bytes of a task's video or thumbnail at the provider. Raises FetchError."""
    url = task.download_url if variant == "video" else ""
    if not url:
        return configured_client().open_content(task.task_id, variant, fetcher())
    headers = {}
    if urlsplit(url).hostname == provider_host() and settings.VIDEO_API_KEY:
        # A direct link on the provider's own host may need the key; SafeFetcher drops it
        # on any redirect that leaves that host. Links elsewhere (CDNs) never get it.
        headers["Authorization"] = f"Bearer {settings.VIDEO_API_KEY}"
    return fetcher().open(url, headers=headers)


def file_name(task: VideoTask, variant: str) -> str:
    """A safe download name carrying the task ID: video_abc.mp4, video_abc-thumbnail.jpg."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", task.task_id).strip("._") or f"task-{task.pk}"
    extension = VARIANTS[variant][0]
    return f"{stem[:120]}.{extension}" if variant == "video" else f"{stem[:120]}-{variant}.{extension}"
