"""Starting videos from the dashboard, without ever paying twice.

`submit` sends one create (or remix) and records what came of it. When the answer is lost
(a timeout or a reset after the request left), nobody can tell whether the provider made
the video, and sending it again could bill a second one. So the attempt is marked
"unknown" and `reconcile`, run by the worker, looks for the video in the provider's list
(`GET /videos`) and tracks it if it is there, or says plainly that nothing was created.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dashboard.encryption import Unreadable
from videos import keep as copies
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
from videos.models import ProviderConnection, Status, Submission, TaskEvent, VideoTask, Workspace
from videos.normalize import Snapshot, normalize, parse_seconds
from videos.scrub import scrub, scrub_json

logger = logging.getLogger("videos.submissions")

# How long after sending a create the provider's clock may say it was made (clock skew,
# queueing at a gateway), and how long the worker keeps looking before it concludes the
# video was never created.
MATCH_WINDOW = timedelta(minutes=3)
RECONCILE_FIRST_LOOK = timedelta(seconds=10)
RECONCILE_ATTEMPTS = 12
# The list is read a few pages deep, and no more entries of a page than were asked for: a
# gateway that sends a hundred thousand (each normalised and compared with every open
# create) would otherwise cost the worker minutes.
MAX_LIST_PAGES = 5
LIST_PAGE_SIZE = 100
# How much of a hostile value a log line shows.
LOGGED_VALUE_CHARS = 40


@dataclass(frozen=True)
class VideoRequest:
    prompt: str
    model: str = ""
    seconds: str = ""
    size: str = ""
    reference: tuple[str, bytes, str] | None = None


def submit(
    owner: Any,
    request: VideoRequest,
    client: VideoAPIClient,
    remix_of: VideoTask | None = None,
    *,
    workspace: Workspace | None = None,
    connection: ProviderConnection | None = None,
    retry_of: VideoTask | None = None,
) -> Submission:
    """Send one create (or a remix of `remix_of`) with `client` (the client of
    `connection`, None for the deployment's own) and record the outcome in `workspace`
    (default: the owner's personal one). Never retries by itself: `retry_of` is the failed
    task a person asked to start again (see `retry`)."""
    submission = Submission.objects.create(
        retry_of=retry_of,
        owner=owner,
        workspace=workspace or Workspace.objects.personal_for(owner),
        connection=connection,
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
            submission.mark_unknown(
                "The provider did not answer clearly, so it may or may not have started the video. "
                "It was not sent again; the worker is looking for it in the provider's list.",
                timezone.now() + RECONCILE_FIRST_LOOK,
            )
        else:
            submission.mark_refused(f"{error.message} Nothing was sent, so nothing was created: try again.")
        return submission
    except ProviderError as error:
        submission.mark_refused(plain_words(error), error.code)
        return submission

    # The answer is provider text like any other: the key it may echo goes before anything
    # of it is read, stored or logged.
    payload = scrub_json(answer.payload, client.api_key)
    try:
        task_id = provider_task_id(payload.get("id"))
    except InvalidTaskId as error:
        logger.warning(
            "submission %s: the provider answered with an unusable video ID %s (%s)",
            submission.pk,
            scrub(shortened(payload.get("id")), client.api_key),
            error,
        )
        task_id = ""
    if not task_id:
        submission.mark_unknown(
            "The provider answered without a usable video ID; "
            "the worker is looking for the video in its list.",
            timezone.now() + RECONCILE_FIRST_LOOK,
        )
        return submission
    submission.mark_created(_track(submission, task_id, payload))
    return submission


def provider_task_id(value: Any) -> str:
    """A task ID as the provider sent it (a create answer's `id`, an entry of its list),
    checked like one a person pastes: it becomes a database key and a request path.
    Raises InvalidTaskId for anything else."""
    # Some gateways number their tasks; a JSON true is not a number here.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidTaskId(f"A task ID must be a string, not {type(value).__name__}.")
    return validate_task_id(str(value))


def shortened(value: Any) -> str:
    """`value` for a log line: its repr, cut short, so a hostile payload cannot flood the log."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past Python's digit limit, deep nesting
        return f"<{type(value).__name__}>"
    return text if len(text) <= LOGGED_VALUE_CHARS else f"{text[:LOGGED_VALUE_CHARS]}... ({len(text)} chars)"


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
            workspace=submission.workspace,
            task_id=task_id,
            defaults={
                "owner": submission.owner,
                "connection": submission.connection,
                "label": submission.prompt[:200],
                "remixed_from": submission.remix_of,
                "created_at": now,
            },
        )
        if created:
            note = (
                "Started from the dashboard."
                if submission.remix_of is None
                else "Remixed from the dashboard."
            )
            if submission.retry_of is not None:
                note = f"{note[:-1]}: a retry of {submission.retry_of.task_id}, with the same settings."
            TaskEvent.objects.create(
                task=task, at=now, kind=TaskEvent.Kind.TRACKED, status=task.status, message=note
            )
            if payload:
                fields, events = task.apply_snapshot(normalize(payload), now)
                fields |= copies.start(task, now)
                if fields:
                    task.save(update_fields=[*fields])
                TaskEvent.objects.bulk_create(events)
    return task


class NotRetryable(Exception):
    """A retry that was not sent; the message says why, for the person who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def started_with(task: VideoTask) -> Submission | None:
    """The attempt that started `task` here (from the dashboard or the API): the prompt,
    model, size, seconds, reference name and connection it was sent with. None for a task
    that was only tracked."""
    return (
        Submission.objects.filter(task=task, state=Submission.State.CREATED)
        .select_related("connection", "remix_of", "retry_of")
        .order_by("created_at", "pk")
        .first()
    )


def live_retries(task: VideoTask) -> list[Submission]:
    """The retries of `task` that made a video, or may have (an answer lost and still
    looked for); refused ones made nothing and do not count."""
    return list(
        task.retries.exclude(state__in=[Submission.State.REJECTED, Submission.State.NOT_CREATED])
        .select_related("task")
        .order_by("created_at", "pk")
    )


def retry_refusal(
    task: VideoTask, original: Submission | None, retries: list[Submission] | None = None
) -> str:
    """Why `task` cannot be retried with the same settings; "" when it can. `retries`: its
    live_retries when the caller has read them already."""
    if task.status != Status.FAILED:
        return "Only a failed video can be retried."
    if original is None:
        return "This video was not started here, so its settings are not known: start a new one."
    if original.reference_name:
        # The image's bytes are sent to the provider and never stored.
        return (
            "This video was started with a reference image, which is not kept: "
            "use Duplicate and attach the image again."
        )
    if original.remix_of_id is None and not original.model:
        # A remix whose source is gone: its settings alone would start a different video.
        return "The video this one remixed is no longer tracked, so it cannot be remixed again."
    done = live_retries(task) if retries is None else retries
    if done:
        made = done[0].task
        where = f" as {made.task_id}" if made is not None else " (its answer is still being looked for)"
        return f"This video was already retried{where}; a second retry would start (and bill) another."
    return ""


def retry(owner: Any, task: VideoTask) -> Submission:
    """Start `task` (a failed video started here) again with the same settings on the same
    connection, once: a new create, or a new remix of the same video. Raises NotRetryable,
    sending nothing, when it cannot be."""
    original = started_with(task)
    refusal = retry_refusal(task, original)
    if refusal:
        raise NotRetryable(refusal)
    assert original is not None  # retry_refusal says why otherwise
    try:
        client = VideoAPIClient.for_connection(original.connection)
    except Unreadable:
        raise NotRetryable(
            "This connection's key can no longer be read; a manager must enter it again."
        ) from None
    with client:
        return submit(
            owner,
            VideoRequest(
                prompt=original.prompt, model=original.model, seconds=original.seconds, size=original.size
            ),
            client,
            original.remix_of,
            workspace=task.workspace,
            connection=original.connection,
            retry_of=task,
        )


@dataclass(frozen=True)
class Listed:
    """One usable entry of the provider's list: a valid ID, its payload, and what it says."""

    task_id: str
    payload: dict[str, Any]
    snapshot: Snapshot


def reconcile(
    client: VideoAPIClient,
    now: datetime | None = None,
    *,
    client_for: Callable[[int], VideoAPIClient | None] | None = None,
) -> int:
    """Look for the videos of "unknown" creates in the provider's list; returns how many
    were settled (found and tracked, or given up as never created).

    Each create is looked for on the connection it was sent to: `client` for the
    deployment's own, `client_for(connection_id)` for a workspace's (the worker passes its
    poller's, which it owns; None when the key cannot be used). Without `client_for`, a
    client is made from the connection for this call and closed after.
    """
    now = now or timezone.now()
    pending = list(Submission.objects.to_reconcile(now).select_related("owner", "connection__workspace"))
    by_connection: dict[int | None, list[Submission]] = {}
    for submission in pending:
        by_connection.setdefault(submission.connection_id, []).append(submission)
    settled = 0
    for key, group in by_connection.items():
        if key is None:
            settled += _reconcile_on(client, None, group, now)
        elif client_for is not None:
            settled += _reconcile_on(client_for(key), key, group, now)
        else:
            settled += _reconcile_with_own_client(group, now)
    return settled


def _reconcile_with_own_client(group: list[Submission], now: datetime) -> int:
    connection = group[0].connection
    try:
        own = VideoAPIClient.for_connection(connection)
    except Unreadable:
        return _reconcile_on(None, connection.pk, group, now)
    with own:
        return _reconcile_on(own, connection.pk, group, now)


def _reconcile_on(
    client: VideoAPIClient | None, key: int | None, pending: list[Submission], now: datetime
) -> int:
    """Reconcile one connection's creates (`key`: its pk, None for the deployment's own)
    against that connection's list, read with its `client` (None: not usable now)."""
    if client is None:
        logger.warning(
            "connection #%s: its key cannot be used now; %d lost create(s) wait for it",
            key,
            len(pending),
        )
        for submission in pending:
            _look_again_later(submission, now)
        return 0
    try:
        videos = _recent_videos(client, min(s.created_at for s in pending) - MATCH_WINDOW)
    except ProviderError as error:
        logger.warning(
            "could not list the videos of %s to reconcile creates: %s",
            f"connection #{key}" if key is not None else "the provider",
            error.message,
        )
        for submission in pending:
            _look_again_later(submission, now)
        return 0
    settled = 0
    # A listed video is not a lost create's when it is tracked already on this connection
    # (in any workspace), nor can it be tracked in a workspace that has a task of that ID
    # (a task ID is unique within a workspace, whatever its connection).
    same_connection = Q(connection__isnull=True) if key is None else Q(connection_id=key)
    tracked = VideoTask.objects.filter(task_id__in=[v.task_id for v in videos]).filter(
        same_connection | Q(workspace_id__in={s.workspace_id for s in pending})
    )
    on_connection: set[str] = set()
    in_workspace: set[tuple[int, str]] = set()
    for workspace_id, connection_id, task_id in tracked.values_list(
        "workspace_id", "connection_id", "task_id"
    ):
        in_workspace.add((workspace_id, task_id))
        if connection_id == key:
            on_connection.add(task_id)
    for submission in sorted(pending, key=lambda s: s.created_at):
        free = [
            v
            for v in videos
            if v.task_id not in on_connection and (submission.workspace_id, v.task_id) not in in_workspace
        ]
        match = _best_match(submission, free)
        if match is not None:
            # One video is one create: nobody else's from now on.
            on_connection.add(match.task_id)
            # Scrubbed like any answer before it is stored (the key may be anywhere in it).
            payload = scrub_json(match.payload, client.api_key)
            submission.mark_created(_track(submission, scrub(match.task_id, client.api_key), payload))
            logger.info(
                "submission %s: found its video %s in the provider's list", submission.pk, match.task_id
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


def _recent_videos(client: VideoAPIClient, since: datetime) -> list[Listed]:
    """The provider's videos made since `since`, newest first (a few pages at most).

    The list is an answer like any other: entries that are not objects, IDs that could not
    be tracked (or polled) and repeats are dropped, with one warning for the whole read, and
    `has_more`/`last_id` are followed only when they are what they claim to be.
    """
    videos: dict[str, Listed] = {}
    dropped: list[str] = []
    after = ""
    for _ in range(MAX_LIST_PAGES):
        page = client.list_videos(after=after, limit=LIST_PAGE_SIZE, order="desc")
        entries = page["data"]  # a list: list_videos refuses anything else
        if len(entries) > LIST_PAGE_SIZE:
            dropped.append(f"{len(entries) - LIST_PAGE_SIZE} entries past the {LIST_PAGE_SIZE} asked for")
        listed = list(_usable(entries[:LIST_PAGE_SIZE], dropped))
        for video in listed:
            videos.setdefault(video.task_id, video)
        oldest = listed[-1].snapshot.remote_created_at if listed else None
        try:
            cursor = provider_task_id(page.get("last_id"))
        except InvalidTaskId:
            cursor = listed[-1].task_id if listed else ""
        # Only a real `true` means more; a cursor that does not move would loop.
        if page.get("has_more") is not True or not cursor or cursor == after:
            break
        if oldest is not None and oldest < since:
            break
        after = cursor
    if dropped:
        logger.warning(
            "the provider's video list had %d unusable entries, ignored (first: %s)",
            len(dropped),
            # Pieces of a key survive cutting short; scrub() finds those too.
            scrub(dropped[0], client.api_key),
        )
    return list(videos.values())


def _usable(entries: Iterable[Any], dropped: list[str]) -> Iterable[Listed]:
    for entry in entries:
        if not isinstance(entry, dict):
            dropped.append(f"not an object: {shortened(entry)}")
            continue
        try:
            task_id = provider_task_id(entry.get("id"))
        except InvalidTaskId as error:
            dropped.append(f"ID {shortened(entry.get('id'))}: {error}")
            continue
        yield Listed(task_id, entry, normalize(entry))


def _best_match(submission: Submission, videos: list[Listed]) -> Listed | None:
    """The listed video this submission most likely made: same request, made just after it
    was sent; the closest in time when several fit."""
    sent = submission.created_at
    latest = (submission.answered_at or sent) + MATCH_WINDOW
    wanted_seconds = parse_seconds(submission.seconds)
    best, best_gap = None, None
    for video in videos:
        snapshot = video.snapshot
        made = snapshot.remote_created_at
        if made is None or not (sent - MATCH_WINDOW <= made <= latest):
            continue
        if submission.model and snapshot.model and snapshot.model != submission.model:
            continue
        if submission.size and snapshot.size and snapshot.size != submission.size:
            continue
        if wanted_seconds is not None and snapshot.seconds is not None and snapshot.seconds != wanted_seconds:
            continue
        prompt = video.payload.get("prompt")
        if isinstance(prompt, str) and prompt.strip() != submission.prompt.strip():
            continue
        remixed = video.payload.get("remixed_from_video_id")
        if submission.remix_of is not None and remixed and remixed != submission.remix_of.task_id:
            continue
        gap = abs((made - sent).total_seconds())
        if best_gap is None or gap < best_gap:
            best, best_gap = video, gap
    return best


__all__ = [
    "NotRetryable",
    "VideoRequest",
    "live_retries",
    "plain_words",
    "reconcile",
    "retry",
    "retry_refusal",
    "started_with",
    "submit",
]
