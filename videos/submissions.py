"""Starting videos from the dashboard, without ever paying twice.

`submit` sends one create (or remix) and records what came of it. When the answer is lost
(a timeout or a reset after the request left), nobody can tell whether the provider made
the video, and sending it again could bill a second one. So the attempt is marked
"unknown" and `reconcile`, run by the worker, looks for the video in the provider's list
(`GET /videos`) and tracks it if it is there, or says plainly that nothing was created.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from videos.client import (
    AuthError,
    InvalidTaskId,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    TransientError,
    VideoAPIClient,
    validate_task_id,
)
from videos.models import Submission, TaskEvent, VideoTask
from videos.normalize import normalize, parse_seconds
from videos.scrub import scrub, scrub_json

logger = logging.getLogger("videos.submissions")

# How long after sending a create the provider's clock may say it was made (clock skew,
# queueing at a gateway), and how long the worker keeps looking before it concludes the
# video was never created.
MATCH_WINDOW = timedelta(minutes=3)
RECONCILE_FIRST_LOOK = timedelta(seconds=10)
RECONCILE_ATTEMPTS = 12
MAX_LIST_PAGES = 5


@dataclass(frozen=True)
class VideoRequest:
    prompt: str
    model: str = ""
    seconds: str = ""
    size: str = ""
    reference: tuple[str, bytes, str] | None = None


def submit(
    owner: Any, request: VideoRequest, client: VideoAPIClient, remix_of: VideoTask | None = None
) -> Submission:
    """Send one create (or a remix of `remix_of`) and record the outcome. Never retries."""
    submission = Submission.objects.create(
        owner=owner,
        prompt=request.prompt,
        model=request.model,
        seconds=request.seconds,
        size=request.size,
        reference_name=request.reference[0][:200] if request.reference else "",
        remix_of=remix_of,
    )
    try:
        if remix_of is not None:
            answer = client.remix(remix_of.task_id, request.prompt)
        else:
            answer = client.create(
                prompt=request.prompt,
                model=request.model,
                seconds=request.seconds,
                size=request.size,
                reference=request.reference,
            )
    except TransientError as error:
        if error.sent:
            submission.unknown(
                "The provider did not answer clearly, so it may or may not have started the video. "
                "It was not sent again; the worker is looking for it in the provider's list.",
                timezone.now() + RECONCILE_FIRST_LOOK,
            )
        else:
            submission.refused(f"{error.message} Nothing was sent, so nothing was created: try again.")
        return submission
    except ProviderError as error:
        submission.refused(plain_words(error), error.code)
        return submission

    # The answer is provider text like any other: the key it may echo goes before anything
    # of it is read, stored or logged.
    payload = scrub_json(answer.payload, client.api_key)
    task_id = payload.get("id")
    try:
        task_id = validate_task_id(str(task_id)) if isinstance(task_id, str | int) else ""
    except InvalidTaskId:
        task_id = ""
    if not task_id:
        submission.unknown(
            "The provider answered without a usable video ID; "
            "the worker is looking for the video in its list.",
            timezone.now() + RECONCILE_FIRST_LOOK,
        )
        return submission
    submission.created(_track(submission, task_id, payload))
    return submission


def plain_words(error: ProviderError) -> str:
    """What a person should read next to the form when the provider refused a create."""
    said = f" The provider said: {error.detail}" if error.detail else ""
    if isinstance(error, QuotaExceeded):
        return "The provider account is out of quota or credit; nothing was created." + said
    if isinstance(error, AuthError):
        return "The provider refused the API key; an operator must fix VIDEO_API_KEY. Nothing was created."
    if isinstance(error, RateLimited):
        wait = f" Try again in {error.retry_after:.0f} s." if error.retry_after else " Try again shortly."
        return "The provider is busy (rate limited) and did not create the video." + wait
    code = error.code.lower()
    if any(word in code for word in ("moderation", "policy", "safety", "content")):
        return "The provider's safety system refused this request; nothing was created." + said
    if error.detail:
        return f"The provider refused the request: {error.detail}"
    return f"{error.message} Nothing was created."


def _track(submission: Submission, task_id: str, payload: dict[str, Any] | None) -> VideoTask:
    """Track the video a submission made, with what the provider already said about it."""
    now = timezone.now()
    with transaction.atomic():
        task, created = VideoTask.objects.get_or_create(
            owner=submission.owner,
            task_id=task_id,
            defaults={
                "label": submission.prompt[:200],
                "remixed_from": submission.remix_of,
                "created_at": now,
                "changed_at": now,
            },
        )
        if created:
            note = (
                "Started from the dashboard."
                if submission.remix_of is None
                else "Remixed from the dashboard."
            )
            TaskEvent.objects.create(
                task=task, at=now, kind=TaskEvent.Kind.TRACKED, status=task.status, message=note
            )
            if payload:
                fields, events = task.apply_snapshot(normalize(payload), now)
                if fields:
                    task.save(update_fields=[*fields])
                TaskEvent.objects.bulk_create(events)
    return task


def reconcile(client: VideoAPIClient, now: datetime | None = None) -> int:
    """Look for the videos of "unknown" creates in the provider's list; returns how many
    were settled (found and tracked, or given up as never created)."""
    now = now or timezone.now()
    pending = list(Submission.objects.to_reconcile(now).select_related("owner"))
    if not pending:
        return 0
    try:
        videos = _recent_videos(client, min(s.created_at for s in pending) - MATCH_WINDOW)
    except ProviderError as error:
        logger.warning("could not list the provider's videos to reconcile creates: %s", error.message)
        for submission in pending:
            _look_again_later(submission, now)
        return 0
    settled = 0
    taken = set(
        VideoTask.objects.filter(task_id__in=[v["id"] for v in videos]).values_list("task_id", flat=True)
    )
    for submission in sorted(pending, key=lambda s: s.created_at):
        match = _best_match(submission, [v for v in videos if v["id"] not in taken])
        if match is not None:
            taken.add(match["id"])
            # Scrubbed like any answer before it is stored (the key may be anywhere in it).
            payload = scrub_json(match, client.api_key)
            submission.created(_track(submission, scrub(match["id"], client.api_key), payload))
            logger.info(
                "submission %s: found its video %s in the provider's list", submission.pk, match["id"]
            )
            settled += 1
        elif submission.reconcile_attempts + 1 >= RECONCILE_ATTEMPTS:
            submission.state = Submission.State.NOT_CREATED
            submission.error_message = (
                "The provider's list has no video matching this request: it was not created, "
                "so nothing was billed. You can submit it again."
            )
            submission.next_reconcile_at = None
            submission.save(update_fields=["state", "error_message", "next_reconcile_at"])
            settled += 1
        else:
            _look_again_later(submission, now)
    return settled


def _look_again_later(submission: Submission, now: datetime) -> None:
    submission.reconcile_attempts += 1
    submission.next_reconcile_at = now + timedelta(seconds=15 * submission.reconcile_attempts)
    submission.save(update_fields=["reconcile_attempts", "next_reconcile_at"])


def _recent_videos(client: VideoAPIClient, since: datetime) -> list[dict[str, Any]]:
    """The provider's videos made since `since`, newest first (a few pages at most)."""
    videos: list[dict[str, Any]] = []
    after = ""
    for _ in range(MAX_LIST_PAGES):
        page = client.list_videos(after=after, limit=100, order="desc")
        items = [v for v in page.get("data", []) if isinstance(v, dict) and isinstance(v.get("id"), str)]
        videos.extend(items)
        oldest = normalize(items[-1]).remote_created_at if items else None
        after = page.get("last_id") or (items[-1]["id"] if items else "")
        if not page.get("has_more") or not after or (oldest is not None and oldest < since):
            break
    return videos


def _best_match(submission: Submission, videos: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The listed video this submission most likely made: same request, made just after it
    was sent; the closest in time when several fit."""
    sent = submission.created_at
    latest = (submission.answered_at or sent) + MATCH_WINDOW
    best, best_gap = None, None
    for video in videos:
        snapshot = normalize(video)
        made = snapshot.remote_created_at
        if made is None or not (sent - MATCH_WINDOW <= made <= latest):
            continue
        if submission.model and snapshot.model and snapshot.model != submission.model:
            continue
        if submission.size and snapshot.size and snapshot.size != submission.size:
            continue
        wanted_seconds = parse_seconds(submission.seconds)
        if wanted_seconds is not None and snapshot.seconds is not None and snapshot.seconds != wanted_seconds:
            continue
        prompt = video.get("prompt")
        if isinstance(prompt, str) and prompt.strip() != submission.prompt.strip():
            continue
        remixed = video.get("remixed_from_video_id")
        if submission.remix_of is not None and remixed and remixed != submission.remix_of.task_id:
            continue
        gap = abs((made - sent).total_seconds())
        if best_gap is None or gap < best_gap:
            best, best_gap = video, gap
    return best


__all__ = ["VideoRequest", "plain_words", "reconcile", "submit"]
