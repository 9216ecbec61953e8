"""Static file storages whose URLs carry the mount point (SCRIPT_NAME) of each request.

Django prefixes a relative STATIC_URL with the script prefix current when the setting is
first read, and a storage reads it once, when it is built; WhiteNoise builds it at start-up
(to mark hashed files immutable), before any request has set the prefix. Under gunicorn
with SCRIPT_NAME=/video-tasks every `{% static %}` URL then missed the prefix. These take
the relative STATIC_URL as their `base_url` option (see STORAGES) and prefix it per use.
"""

from __future__ import annotations

from django.contrib.staticfiles import storage
from django.urls import get_script_prefix
from whitenoise.storage import CompressedManifestStaticFilesStorage


class MountedURLMixin:
    _base_url: str | None

    @property
    def base_url(self) -> str:
        url = self._base_url or ""
        if url.startswith(("/", "http://", "https://")):
            return url
        return f"{get_script_prefix()}{url}"


class ManifestStaticFilesStorage(MountedURLMixin, CompressedManifestStaticFilesStorage):
    """Production: hashed, compressed names (collectstatic), served by WhiteNoise."""


class StaticFilesStorage(MountedURLMixin, storage.StaticFilesStorage):
    """Tests and local runs: plain names from the finders, no collectstatic needed."""
