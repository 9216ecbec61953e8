"""Fetching a task's video (or thumbnail) on a user's behalf, for the download proxy.

The provider's direct link is used while it lives; otherwise the provider's content
endpoint, with the key, which never leaves the server. The provider is the task's own
connection's (a workspace's, or the deployment's), and so is the key. Every fetch goes through
SafeFetcher: a link found in an API answer is untrusted input, and must not make the
server reach into its own network.

What we send back is ours to decide, never the provider's: the content type comes from the
variant (`served_type`), and every download answer carries `protect`'s headers, so a body
the provider labels HTML, SVG or JavaScript is never run on the dashboard's origin. And a
process streams at most VIDEO_DOWNLOAD_CONCURRENCY files at once (`stream`), so a hung
provider cannot hold every web thread.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpResponseBase
from django.utils.http import content_disposition_header

from dashboard.encryption import Unreadable
from videos.client import content_url
from videos.models import UNREADABLE_KEY_REASON, ProviderConnection, VideoTask
from videos.safe_fetch import Download, FetchFailed, SafeFetcher, host_allowed

VARIANTS = {
    "video": ("mp4", "video/mp4"),
    "thumbnail": ("jpg", "image/jpeg"),
    "spritesheet": ("jpg", "image/jpeg"),
}

# Types a browser only ever displays, never runs, for each variant. A provider's type off
# this list (HTML, XML, SVG, JavaScript, text, empty...) is replaced by the variant's own.
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
PASSIVE_TYPES = {
    "video": frozenset({"video/mp4", "video/webm", "video/quicktime"}),
    "thumbnail": _IMAGE_TYPES,
    "spritesheet": _IMAGE_TYPES,
}

# Sent with every download answer, files and errors alike: no sniffing a type of its own,
# and a document that may run nothing and load nothing, should a browser open it anyway.
DOWNLOAD_CSP = "default-src 'none'; sandbox"
# The player's video, opened in a tab of its own, is shown by the browser's media document,
# which loads the URL again: let it, from its own origin (an opaque one fails that load).
# Still no scripts, forms or popups: allow-same-origin without allow-scripts runs nothing.
INLINE_CSP = "default-src 'none'; media-src 'self'; sandbox allow-same-origin"
# Seconds a client is asked to wait when every download slot is taken.
BUSY_RETRY_AFTER = 5


def fetcher(connection: ProviderConnection | None = None) -> SafeFetcher:
    """The fetcher for the files of `connection`'s provider (None: the deployment's own):
    only that provider's exact origin (scheme, host, port) may be on loopback or a private
    network, and a workspace connection's only when an operator listed its host in
    VIDEO_FETCH_ALLOW_HOSTS (a manager typed it: otherwise its files, like any link, must
    come from public addresses)."""
    if connection is None:
        trusted = [settings.VIDEO_API_BASE_URL]
    elif host_allowed(connection.base_url, settings.VIDEO_FETCH_ALLOW_HOSTS):
        trusted = [connection.base_url]
    else:
        trusted = []
    return SafeFetcher(
        trusted_origins=trusted,
        max_bytes=settings.VIDEO_DOWNLOAD_MAX_BYTES,
        deadline=settings.VIDEO_DOWNLOAD_DEADLINE,
    )


def provider_credentials(connection: ProviderConnection | None) -> dict[str, Any]:
    """The key of a task's connection for SafeFetcher.open, scoped to that connection's base
    URL: the fetcher sends it on no other origin and no other path, not even after a
    redirect (the same scope as VideoAPIClient.credentials). Raises FetchFailed, transient,
    when the stored key cannot be decrypted: the copy is tried again later, after a manager
    has entered the key again."""
    if connection is None:
        base_url, api_key = settings.VIDEO_API_BASE_URL, settings.VIDEO_API_KEY
    else:
        try:
            base_url, api_key = connection.base_url, connection.api_key()
        except Unreadable:
            raise FetchFailed(UNREADABLE_KEY_REASON, transient=True) from None
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return {"headers": headers, "headers_scope": base_url.rstrip("/")}


def open_remote(task: VideoTask, variant: str = "video") -> Download:
    """Open the bytes of a task's video or thumbnail at the provider of the task's own
    connection, with that connection's key. Raises FetchError."""
    connection = task.connection
    credentials = provider_credentials(connection)
    url = task.download_url if variant == "video" else ""
    if not url:
        # No link of its own: the content endpoint, named by the client's one rule for a
        # task's path (the ID percent-encoded), under the connection's base URL.
        url = content_url(credentials["headers_scope"], task.task_id, variant)
    # A direct link under the provider's base URL may need the key; SafeFetcher sends it to
    # nothing else (another port, scheme or path of the same host, a CDN, a redirect).
    return fetcher(connection).open(url, **credentials)


def file_name(task: VideoTask, variant: str) -> str:
    """A safe download name carrying the task ID: video_abc.mp4, video_abc-thumbnail.jpg."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", task.task_id).strip("._") or f"task-{task.pk}"
    extension = VARIANTS[variant][0]
    return f"{stem[:120]}.{extension}" if variant == "video" else f"{stem[:120]}-{variant}.{extension}"


def served_type(variant: str, provider_type: str = "") -> str:
    """The Content-Type we serve a variant with: the provider's if it is a passive type for
    that variant (parameters dropped), else the variant's default."""
    media_type = provider_type.split(";", 1)[0].strip().lower()
    return media_type if media_type in PASSIVE_TYPES[variant] else VARIANTS[variant][1]


def protect(response: HttpResponseBase, filename: str, *, inline: bool = False) -> HttpResponseBase:
    """Give a download answer (a file or an error) the headers that keep it inert."""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = INLINE_CSP if inline else DOWNLOAD_CSP
    response["Content-Disposition"] = content_disposition_header(not inline, filename)
    response["Cache-Control"] = "private, no-store"
    return response


class Busy(Exception):
    """Every download slot of this process is taken; try again in a few seconds."""


class DownloadSlots:
    """A process-wide, non-blocking count of proxied downloads in flight, at most
    VIDEO_DOWNLOAD_CONCURRENCY (read on each `take`, so a changed setting applies at once).

    A slot is held from before the provider is contacted until the body has been sent or
    abandoned, so a provider that hangs can hold at most that many of a process's threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_use = 0

    def take(self) -> Slot | None:
        with self._lock:
            if self.in_use >= settings.VIDEO_DOWNLOAD_CONCURRENCY:
                return None
            self.in_use += 1
            return Slot(self)

    def _give_back(self, slot: Slot) -> None:
        with self._lock:
            if slot.held:
                slot.held = False
                self.in_use -= 1


class Slot:
    def __init__(self, slots: DownloadSlots) -> None:
        self._slots = slots
        self.held = True

    def release(self) -> None:
        """Give the slot back; once only, however many paths get here."""
        self._slots._give_back(self)


SLOTS = DownloadSlots()


class ProxiedBody:
    """A provider's file for a StreamingHttpResponse, holding a download slot.

    The slot goes back when the body is all sent, when reading it fails, or when the
    response is closed early (the client went away): StreamingHttpResponse calls `close`,
    which a generator would ignore if it had not started yet.
    """

    def __init__(self, remote: Download, slot: Slot, content_type: str) -> None:
        self._remote = remote
        self._slot = slot
        self._chunks = remote.iter_bytes()
        self.content_type = content_type
        self.content_length = remote.content_length

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            self._chunks.close()
            self._remote.close()
        finally:
            self._slot.release()


def stream(task: VideoTask, variant: str = "video") -> ProxiedBody:
    """Open a task's file at the provider for the download proxy, under a download slot.

    Raises Busy when every slot is taken (the provider is not contacted), else FetchError.
    """
    slot = SLOTS.take()
    if slot is None:
        raise Busy
    try:
        remote = open_remote(task, variant)
    except BaseException:
        slot.release()
        raise
    return ProxiedBody(remote, slot, served_type(variant, remote.content_type))


@dataclass(frozen=True)
class File:
    """What the download view sends: the bytes, their type and, when known, their length."""

    body: Iterable[bytes]
    content_type: str
    content_length: int | None = None


def open_file(task: VideoTask, variant: str) -> File:
    """A task's file for the download view: our kept copy when there is one (it outlives the
    provider's link, and a local file needs no download slot), else the provider's, streamed
    under a slot. Raises Busy or FetchError as `stream` does."""
    kept = {"video": task.kept_file, "thumbnail": task.kept_thumbnail}.get(variant)
    if task.is_kept and kept:
        # FileResponse finds the length of a file itself.
        return File(kept.open("rb"), served_type(variant))
    body = stream(task, variant)
    return File(body, body.content_type, body.content_length)
