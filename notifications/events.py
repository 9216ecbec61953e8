"""Turning what happened into `Event` rows: cheap (one INSERT) and never raising into the
caller's work, since the callers are the poller and the worker."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone

from notifications.models import Event, EventKind

if TYPE_CHECKING:
    from videos.models import ProviderState, VideoTask

logger = logging.getLogger("notifications")

# A worker's heartbeat older than this is silent (a beat is written every few seconds).
SILENT_AFTER = timedelta(minutes=5)
# Stale heartbeats older than this are history, not news.
SILENT_LOOKBACK = timedelta(days=1)


def task_url(task_pk: int) -> str:
    """The task's page as an absolute URL, or "" when SITE_URL is not set."""
    base = settings.SITE_URL.rstrip("/")
    return f"{base}{reverse('videos:task_detail', args=[task_pk])}" if base else ""


def _task_event(task: VideoTask, workspace_name: str) -> Event:
    completed = task.status == "completed"
    kind = EventKind.COMPLETED if completed else EventKind.FAILED
    name = task.label or task.task_id
    url = task_url(task.pk)
    if completed:
        text = f"Video finished: {name} in {workspace_name}"
    else:
        error = task.error_message or task.error_code or "no reason given"
        text = f"Video failed: {name} in {workspace_name} ({error[:200]})"
    if url:
        text += f" — {url}"
    data: dict[str, Any] = {
        "task": {
            "id": task.pk,
            "task_id": task.task_id,
            "label": task.label,
            "status": task.status,
            "model": task.model,
            "error_code": task.error_code,
            "error_message": task.error_message,
        },
        "workspace": workspace_name,
    }
    if url:
        data["url"] = url
    return Event(
        kind=kind,
        workspace_id=task.workspace_id,
        task_id=task.pk,
        owner_id=task.owner_id,
        text=text,
        data=data,
    )


def enqueue_task_events(tasks: Iterable[VideoTask]) -> None:
    """One event per task that just reached completed or failed, in one INSERT. Runs after
    the poller's transaction commits; a failure is logged, never raised into the poller."""
    from teams.models import Workspace

    tasks = [task for task in tasks if task.status in ("completed", "failed")]
    if not tasks:
        return
    try:
        names = dict(
            Workspace.objects.filter(pk__in={t.workspace_id for t in tasks}).values_list("pk", "name")
        )
        Event.objects.bulk_create([_task_event(task, names.get(task.workspace_id, "")) for task in tasks])
    except DatabaseError:
        logger.exception("could not queue notifications for %d finished task(s)", len(tasks))


def enqueue_key_refused(state: ProviderState, reason: str) -> None:
    """The provider refused a connection's key (the poller blocked it)."""
    connection = state.connection
    if connection is not None:
        text = (
            f"The provider refused the key of connection {connection.name} "
            f"in {connection.workspace.name}: {reason}"
        )
        workspace_id = connection.workspace_id
        data = {"connection": {"id": connection.pk, "name": connection.name}, "reason": reason}
    else:
        text = f"The provider refused the deployment's key (VIDEO_API_KEY): {reason}"
        workspace_id = None
        data = {"connection": None, "reason": reason}
    try:
        Event.objects.create(
            kind=EventKind.KEY_REFUSED, workspace_id=workspace_id, text=text[:2000], data=data
        )
    except DatabaseError:
        logger.exception("could not queue the key-refused notification")


def check_workers(me: str, started_at: datetime, *, first: bool, now: datetime | None = None) -> int:
    """Queue "worker.silent" events, from a running worker (`me`, the heartbeat's name):

    - at start-up (`first`), when no worker had beaten for over SILENT_AFTER: "the worker is
      back", with how long polling stopped;
    - on every beat, for each other worker whose heartbeat went stale without a clean stop
      (killed, crashed, machine gone), once per heartbeat (the event ID is derived from its
      name and last beat, so several workers noticing it queue it once). A stale worker of
      this host last seen before this one started is the process this one replaced.

    Returns how many events it offered (duplicates are dropped by the database)."""
    from videos.models import WorkerHeartbeat

    now = now or timezone.now()
    events = []
    if first:
        latest = WorkerHeartbeat.objects.exclude(name=me).latest_seen()
        if latest is not None and now - latest > SILENT_AFTER:
            minutes = int((now - latest).total_seconds() // 60)
            events.append(
                Event(
                    event_id="back_" + hashlib.sha256(f"{latest.isoformat()}".encode()).hexdigest()[:32],
                    kind=EventKind.WORKER_SILENT,
                    text=f"The worker is back: no worker was running for {minutes} minutes "
                    f"(since {latest:%Y-%m-%d %H:%M} UTC); polling and notifications resume now.",
                    data={"state": "back", "silent_since": latest.isoformat(), "worker": me},
                )
            )
    host = me.rsplit(":", 1)[0]
    stale = WorkerHeartbeat.objects.filter(
        stopped_at__isnull=True, last_seen_at__lt=now - SILENT_AFTER, last_seen_at__gte=now - SILENT_LOOKBACK
    ).exclude(name=me)
    for name, seen in stale.values_list("name", "last_seen_at"):
        if name.rsplit(":", 1)[0] == host and seen <= started_at:
            continue
        events.append(
            Event(
                # The same ID from every worker that notices: the unique event_id keeps one.
                event_id="silent_" + hashlib.sha256(f"{name}|{seen.isoformat()}".encode()).hexdigest()[:32],
                kind=EventKind.WORKER_SILENT,
                text=f"A worker went silent: {name} has not reported since {seen:%Y-%m-%d %H:%M} UTC.",
                data={"state": "silent", "silent_since": seen.isoformat(), "worker": name},
            )
        )
    if not events:
        return 0
    return len(Event.objects.bulk_create(events, ignore_conflicts=True))
