"""Kept copies: the worker copies each finished video (and its thumbnail, when the
provider has one) into Django's storage before the provider's link expires, so downloads
and the player keep working afterwards. Never regenerates a video: it only fetches bytes
that already exist, from the provider of the task's own connection with that connection's
key, with retries and backoff when the fetch fails.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from videos import downloads
from videos.models import KeepState, Status, VideoTask
from videos.safe_fetch import FetchError, FetchFailed
from videos.scrub import scrub

logger = logging.getLogger("videos.keep")

# Give up after this many failed copies in a row (about a day of backoff), or at once when
# the provider says the file is gone.
MAX_ATTEMPTS = 10
# A copy in progress is presumed dead (worker killed) after this long: it goes back to
# waiting (see reclaim_stale). While copying, next_keep_at holds the end of this lease.
COPY_LEASE = timedelta(minutes=30)


def start(task: VideoTask, now: datetime) -> set[str]:
    """Whether to keep a copy of a task that an answer has just finished, decided here, not by
    the model: with VIDEO_KEEP on, a completed video with no copy yet waits for one, due now.
    Sets the fields on `task` (in memory) and returns their names, for the caller to write."""
    if not settings.VIDEO_KEEP or task.status != Status.COMPLETED or task.keep_state:
        return set()
    task.keep_state = KeepState.WAITING
    task.next_keep_at = now
    return {"keep_state", "next_keep_at"}


def due(now=None) -> list[VideoTask]:
    """Copies to make now: waiting, or failed and due for a retry."""
    now = now or timezone.now()
    return list(
        VideoTask.objects.filter(
            keep_state__in=[KeepState.WAITING, KeepState.FAILED],
            next_keep_at__lte=now,
            status=Status.COMPLETED,
            remote_deleted_at__isnull=True,
        )
        # Each copy is fetched on its task's own connection (downloads.open_remote).
        .select_related("connection")
        .order_by("next_keep_at")[:10]
    )


def reclaim_stale(now=None) -> int:
    """Copies still "copying" after their lease (the worker copying them was killed or
    lost them) go back to waiting, due at once. Returns how many."""
    now = now or timezone.now()
    reclaimed = 0
    stale = VideoTask.objects.filter(keep_state=KeepState.COPYING, next_keep_at__lte=now)
    for task in stale.only("pk", "task_id", "next_keep_at"):
        # Conditional, so a copy that a slow worker finishes meanwhile is left alone.
        if VideoTask.objects.filter(
            pk=task.pk, keep_state=KeepState.COPYING, next_keep_at=task.next_keep_at
        ).update(keep_state=KeepState.WAITING):
            logger.warning(
                "task %s (%s): its copy was still running when its lease ended at %s; back to waiting",
                task.pk,
                task.task_id,
                f"{task.next_keep_at:%H:%M:%S}",
            )
            reclaimed += 1
    return reclaimed


def run(limit: int = 10, should_stop=lambda: False) -> int:
    """Make the due copies (at most `limit`), after taking back the ones whose lease ran
    out; returns how many were kept.

    A copy that fails for a reason of ours rather than the provider's (storage full or
    unreachable, a file in the way) goes back to waiting without using up an attempt, the
    other copies are still made, and then the first such error is raised for the worker's
    supervisor to log, count and back off on.
    """
    reclaim_stale()
    kept = 0
    unexpected: Exception | None = None
    for task in due()[:limit]:
        if should_stop():
            break
        if not _claim(task):
            continue  # another worker took it
        try:
            kept += keep(task)
        except (OperationalError, InterfaceError):
            raise  # the database is gone: nothing can be written; the lease hands it back
        except Exception as error:
            _hand_back(task, error)
            unexpected = unexpected or error
    if unexpected is not None:
        raise unexpected
    return kept


def _claim(task: VideoTask) -> bool:
    now = timezone.now()
    return bool(
        VideoTask.objects.filter(
            pk=task.pk, keep_state=task.keep_state, next_keep_at=task.next_keep_at
        ).update(keep_state=KeepState.COPYING, next_keep_at=now + COPY_LEASE)
    )


def keep(task: VideoTask) -> bool:
    """Copy one task's video (and thumbnail) into storage. Records the outcome on the task."""
    now = timezone.now()
    try:
        name, size = _copy(task, "video", "videos")
    except FetchError as error:
        _failed(task, error, now)
        return False
    thumbnail = ""
    try:
        with contextlib.suppress(FetchError):  # many providers have none; the video is what matters
            thumbnail, _ = _copy(task, "thumbnail", "thumbnails")
    except Exception:
        with contextlib.suppress(Exception):  # the copy is made again from the start
            default_storage.delete(name)
        raise
    VideoTask.objects.filter(pk=task.pk).update(
        keep_state=KeepState.KEPT,
        kept_file=name,
        kept_thumbnail=thumbnail,
        kept_bytes=size,
        kept_at=now,
        keep_error="",
        next_keep_at=None,
    )
    logger.info("task %s (%s): kept a copy (%d bytes)", task.pk, task.task_id, size)
    return True


def _copy(task: VideoTask, variant: str, folder: str) -> tuple[str, int]:
    """Stream one file from the provider into storage; returns its stored name and size."""
    with (
        downloads.open_remote(task, variant) as remote,
        tempfile.SpooledTemporaryFile(8 * 1024 * 1024) as buffer,
    ):
        size = 0
        for chunk in remote.iter_bytes():
            buffer.write(chunk)
            size += len(chunk)
        if size == 0:
            raise FetchFailed("The provider sent an empty file.", transient=True)
        buffer.seek(0)
        name = f"kept/{folder}/{downloads.file_name(task, variant).rsplit('.', 1)[0]}-{uuid.uuid4().hex[:8]}"
        name += "." + downloads.VARIANTS[variant][0]
        stored = default_storage.save(name, File(buffer, name=name))
    return stored, size


def _hand_back(task: VideoTask, error: Exception) -> None:
    """Back to waiting, behind the copies already due, after an error that is not the
    provider's: the fault is ours to fix, so it does not count as one of the file's attempts."""
    now = timezone.now()
    VideoTask.objects.filter(pk=task.pk, keep_state=KeepState.COPYING).update(
        keep_state=KeepState.WAITING, next_keep_at=now
    )
    logger.warning(
        "task %s (%s): copy interrupted by %s: %s; back to waiting",
        task.pk,
        task.task_id,
        type(error).__name__,
        error,
    )


def _failed(task: VideoTask, error: FetchError, now) -> None:
    attempts = task.keep_attempts + 1
    gone = isinstance(error, FetchFailed) and error.status_code in (404, 410)
    permanent = gone or not getattr(error, "transient", False) or attempts >= MAX_ATTEMPTS
    retry_at = None if permanent else now + timedelta(seconds=min(30 * 2**attempts, 6 * 3600))
    VideoTask.objects.filter(pk=task.pk).update(
        keep_state=KeepState.FAILED,
        keep_error=scrub(error.reason)[:500],
        keep_attempts=attempts,
        next_keep_at=retry_at,
    )
    logger.warning(
        "task %s (%s): could not keep a copy (%s)%s",
        task.pk,
        task.task_id,
        error.reason,
        "; giving up" if permanent else f"; retrying at {retry_at:%H:%M:%S}",
    )


def prune(now=None) -> int:
    """Delete kept files older than VIDEO_KEEP_DAYS (0 keeps them forever)."""
    if not settings.VIDEO_KEEP_DAYS:
        return 0
    now = now or timezone.now()
    old = VideoTask.objects.filter(
        keep_state=KeepState.KEPT, kept_at__lt=now - timedelta(days=settings.VIDEO_KEEP_DAYS)
    )
    removed = 0
    for task in old:
        for stored in (task.kept_file, task.kept_thumbnail):
            if stored:
                default_storage.delete(stored.name)
        VideoTask.objects.filter(pk=task.pk).update(
            keep_state=KeepState.REMOVED, kept_file="", kept_thumbnail="", kept_bytes=0
        )
        removed += 1
    return removed
