"""The built-in sandbox provider: fake video jobs that play out over time.

The app serves the same wire shape as an OpenAI-compatible video gateway under
/sandbox/v1/ (see views.py), so `make run` shows tasks moving with no key and no
network. A job's whole life is fixed when it is created (duration, outcome, dialect);
every answer is computed from the time elapsed since, so nothing has to run in the
background and any instant of a job can be reproduced in a test by passing `now`.

Two dialects, because the poller must understand both:
- "openai": status queued -> in_progress -> completed/failed, progress an int, Unix
  seconds, the download link under `url`, unset fields as null.
- "gateway" (new-api style): status pending -> processing -> succeeded/failed, progress
  a string such as "45%", Unix milliseconds, the link under `video_url` or
  `metadata.url`, unset fields left out.
"""

from __future__ import annotations

import random
import secrets
import zlib
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from django.core import signing
from django.utils import timezone

from sandbox.models import SandboxVideo

VOCABULARIES = ("openai", "gateway")
OUTCOMES = ("completed", "failed")

# Where in a job's duration it leaves the queue, and where a doomed job gives up.
QUEUED_FRACTION = 0.15
FAIL_FRACTION = 0.60
# Download links expire, as real ones do; the dashboard shows the expiry.
LINK_LIFETIME = timedelta(hours=1)
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

_STATUS_WORDS = {
    "openai": {
        "pending": "queued",
        "processing": "in_progress",
        "completed": "completed",
        "failed": "failed",
    },
    "gateway": {
        "pending": "pending",
        "processing": "processing",
        "completed": "succeeded",
        "failed": "failed",
    },
}

# Failures seen from real gateways, so the dashboard shows something believable. A job
# always fails with the same one: the choice is a function of its ID.
FAILURES = (
    (
        "moderation_blocked",
        "Your request was blocked by our moderation system: the prompt may depict a real person.",
    ),
    ("upstream_timeout", "The upstream provider did not answer within 300 seconds; please retry."),
    ("content_policy_violation", "The generated video was flagged by the safety filter and withheld."),
    ("generation_failed", "Video generation failed: the model produced no usable frames."),
    ("internal_error", "An internal error occurred while rendering the video. Please try again later."),
)


class InvalidRequest(ValueError):
    """A client mistake the views answer with 400, naming the offending parameter."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def create_video(
    *,
    prompt: str = "",
    model: str = "sandbox-video-1",
    seconds: str = "4",
    size: str = "1280x720",
    duration_seconds: int | None = None,
    outcome: str | None = None,
    vocabulary: str | None = None,
    now: datetime | None = None,
) -> SandboxVideo:
    """Start a fake job. Whatever is not given is drawn at random, like a real provider's
    queue: 45-110 s long, about three in four succeed, either dialect."""
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidRequest(f"outcome must be one of {', '.join(OUTCOMES)}.", "outcome")
    if vocabulary is not None and vocabulary not in VOCABULARIES:
        raise InvalidRequest(f"vocabulary must be one of {', '.join(VOCABULARIES)}.", "vocabulary")
    return SandboxVideo.objects.create(
        video_id="video_" + secrets.token_hex(12),
        created_at=now or timezone.now(),
        prompt=prompt,
        model=model,
        seconds=seconds,
        size=size,
        duration_seconds=max(1, duration_seconds)
        if duration_seconds is not None
        else random.randint(45, 110),
        outcome=outcome or ("completed" if random.random() < 0.75 else "failed"),
        vocabulary=vocabulary or random.choice(VOCABULARIES),
    )


def get_video(video_id: str) -> SandboxVideo | None:
    """The live (not deleted) video with this ID, if any."""
    return SandboxVideo.objects.filter(video_id=video_id, deleted=False).first()


def phase(video: SandboxVideo, now: datetime) -> tuple[str, int]:
    """The canonical status and progress (0-100) of a job at `now`."""
    duration = max(1, video.duration_seconds)
    elapsed = (now - video.created_at).total_seconds()
    if video.outcome == "failed" and elapsed >= FAIL_FRACTION * duration:
        return "failed", _running_progress(FAIL_FRACTION)
    if elapsed >= duration:
        return "completed", 100
    if elapsed < QUEUED_FRACTION * duration:
        return "pending", 0
    return "processing", _running_progress(elapsed / duration)


def _running_progress(fraction: float) -> int:
    # Progress covers the running part only, and stops at 99: 100 means done.
    running = (fraction - QUEUED_FRACTION) / (1 - QUEUED_FRACTION)
    return max(0, min(99, int(running * 100)))


def finished_at(video: SandboxVideo) -> datetime:
    """When the job reaches its terminal state (success or failure)."""
    fraction = FAIL_FRACTION if video.outcome == "failed" else 1.0
    return video.created_at + timedelta(seconds=max(1, video.duration_seconds) * fraction)


def failure(video: SandboxVideo) -> tuple[str, str]:
    return FAILURES[zlib.crc32(video.video_id.encode()) % len(FAILURES)]


def content_url(video: SandboxVideo, base_url: str) -> str:
    """The absolute download link; `base_url` is the API root, e.g. http://host/sandbox/v1.

    Like a CDN's signed URL it works without the API key until it expires, so a browser
    can follow it from the dashboard. It is the same on every poll (the signature covers
    the video and its expiry, not the time of asking), so polling does not see it change.
    """
    expires = int((finished_at(video) + LINK_LIFETIME).timestamp())
    signature = _link_signer().sign(f"{video.video_id}:{expires}").rpartition(":")[2]
    query = urlencode({"expires": expires, "signature": signature})
    return f"{base_url.rstrip('/')}/videos/{quote(video.video_id, safe='')}/content?{query}"


def signed_link_is_valid(video_id: str, expires: str, signature: str, now: datetime) -> bool:
    """Whether a link from content_url() is genuine and not yet expired."""
    if not expires.isdigit() or len(expires) > 12 or int(expires) <= now.timestamp():
        return False
    try:
        _link_signer().unsign(f"{video_id}:{expires}:{signature}")
    except signing.BadSignature:
        return False
    return True


def _link_signer() -> signing.Signer:
    return signing.Signer(salt="videos.sandbox.content-link")


def video_payload(video: SandboxVideo, now: datetime, *, base_url: str) -> dict[str, Any]:
    """The JSON object the provider answers for this video at `now`."""
    status, progress = phase(video, now)
    word = _STATUS_WORDS[video.vocabulary][status]
    done_at = finished_at(video) if status in OUTCOMES else None
    if video.vocabulary == "gateway":
        return _gateway_payload(video, status, word, progress, done_at, base_url)
    return _openai_payload(video, status, word, progress, done_at, base_url)


def _openai_payload(
    video: SandboxVideo, status: str, word: str, progress: int, done_at: datetime | None, base_url: str
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": video.video_id,
        "object": "video",
        "model": video.model,
        "status": word,
        "progress": progress,
        "created_at": int(video.created_at.timestamp()),
        # OpenAI sends unset fields as null: the poller must read null as "unset".
        "completed_at": int(done_at.timestamp()) if done_at else None,
        "expires_at": None,
        "seconds": video.seconds,
        "size": video.size,
        # Sora's video object carries the prompt; it lets a client recognise its own video
        # in the list when a create's answer was lost.
        "prompt": video.prompt,
        "remixed_from_video_id": None,
        "error": None,
    }
    if status == "completed" and done_at:
        payload["expires_at"] = int((done_at + LINK_LIFETIME).timestamp())
        payload["url"] = content_url(video, base_url)
    elif status == "failed":
        code, message = failure(video)
        payload["error"] = {"code": code, "message": message}
    return payload


def _gateway_payload(
    video: SandboxVideo, status: str, word: str, progress: int, done_at: datetime | None, base_url: str
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": video.video_id,
        # new-api repeats the ID as task_id; clients written against it read either.
        "task_id": video.video_id,
        "object": "video",
        "model": video.model,
        "status": word,
        "progress": f"{progress}%",
        "created_at": _millis(video.created_at),
        "seconds": video.seconds,
        "size": video.size,
    }
    if done_at:
        payload["completed_at"] = _millis(done_at)
    if status == "completed" and done_at:
        payload["expires_at"] = _millis(done_at + LINK_LIFETIME)
        url = content_url(video, base_url)
        # Gateways disagree on where the link goes; serve both places, chosen per video
        # (stable across polls) so the poller's lookup order is exercised.
        if zlib.crc32(video.video_id.encode()) % 2:
            payload["metadata"] = {"url": url}
        else:
            payload["video_url"] = url
    elif status == "failed":
        code, message = failure(video)
        payload["error"] = {"code": code, "message": message}
        payload["fail_reason"] = message
    return payload


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def list_videos(
    *,
    now: datetime,
    base_url: str,
    after: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    order: str = "desc",
) -> dict[str, Any]:
    """One page of live videos, newest first by default, in the OpenAI list envelope.

    `after` is the ID of the last video of the previous page (a cursor, as OpenAI uses).
    """
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'.", "order")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}.", "limit")
    videos = SandboxVideo.objects.filter(deleted=False)
    videos = videos.order_by("created_at", "pk") if order == "asc" else videos.order_by("-created_at", "-pk")
    if after:
        cursor = SandboxVideo.objects.filter(video_id=after).first()
        if cursor is None:
            raise InvalidRequest(f"No video found with id '{after}'.", "after")
        # Strictly past the cursor in the page order; pk breaks ties of equal timestamps.
        if order == "asc":
            videos = videos.filter(created_at__gte=cursor.created_at).exclude(
                created_at=cursor.created_at, pk__lte=cursor.pk
            )
        else:
            videos = videos.filter(created_at__lte=cursor.created_at).exclude(
                created_at=cursor.created_at, pk__gte=cursor.pk
            )
    page = list(videos[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    return {
        "object": "list",
        "data": [video_payload(video, now, base_url=base_url) for video in page],
        "has_more": has_more,
        "first_id": page[0].video_id if page else None,
        "last_id": page[-1].video_id if page else None,
    }


def delete_video(video: SandboxVideo) -> dict[str, Any]:
    """Forget a video: later lookups answer 404, as a provider's would."""
    video.deleted = True
    video.save(update_fields=["deleted"])
    return {"id": video.video_id, "object": "video.deleted", "deleted": True}


def remix_video(source: SandboxVideo, *, prompt: str, now: datetime, base_url: str) -> dict[str, Any]:
    """A new job from a finished one, answered with the link to its source.

    SandboxVideo has no field for the source, so only this creation answer names it;
    later lookups of the remix say null, which real clients tolerate.
    """
    if phase(source, now)[0] != "completed":
        raise InvalidRequest(
            f"Video '{source.video_id}' is not completed; only completed videos can be remixed.",
            code="video_not_ready",
        )
    video = create_video(
        prompt=prompt,
        model=source.model,
        seconds=source.seconds,
        size=source.size,
        vocabulary=source.vocabulary,
        now=now,
    )
    payload = video_payload(video, now, base_url=base_url)
    payload["remixed_from_video_id"] = source.video_id
    return payload
