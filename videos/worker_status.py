"""Is anything polling? What a board's banner says about the worker, the deployment's own
provider connection and the workspace's connections."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import dateparse, timezone

from videos.models import ProviderState, WorkerHeartbeat, Workspace, key_fingerprint

logger = logging.getLogger(__name__)

# A worker that has not been seen for this long is reported as not polling.
STALE_AFTER = timedelta(minutes=1)
# How long a task's next check may be late before its row says "next check overdue": the
# worker claims due tasks every few seconds, so a check later than this is a missed beat.
OVERDUE_AFTER = timedelta(seconds=15)
# How long the "worker is silent" warning stays logged for one silence (keyed by the last
# heartbeat seen, so a new silence after the worker came back is logged again).
SILENCE_LOGGED_FOR = 7 * 24 * 3600


def heard_since(now: datetime) -> datetime:
    """The oldest heartbeat of a worker that has not gone silent: the one rule for "is the
    worker alive", read by the dashboard's banner, /healthz and poll_stats."""
    return now - STALE_AFTER


def is_silent(last_seen: datetime | None, now: datetime | None = None) -> bool:
    """Whether a worker last seen at `last_seen` (None: never) has gone silent."""
    return last_seen is None or last_seen < heard_since(now or timezone.now())


def worker_running(now: datetime | None = None) -> bool:
    """Whether some worker has beaten recently: what *Refresh now* tells the person. One query."""
    now = now or timezone.now()
    running = WorkerHeartbeat.objects.filter(stopped_at__isnull=True, last_seen_at__gte=heard_since(now))
    return running.exists()


def check_overdue_at(next_poll_at: datetime | None) -> datetime | None:
    """When a task due at `next_poll_at` counts as overdue (None: no check is planned)."""
    return next_poll_at + OVERDUE_AFTER if next_poll_at else None


# The last silence this process logged (or found logged): a board refreshed every few
# seconds then costs no cache lookup per request while the same silence lasts.
_noted = {"key": ""}


def note_silence(last_seen: datetime | None) -> None:
    """Log once per silence that a page found the worker silent. The web side only logs:
    the worker's own notifications (notifications app, `worker.silent`) tell the
    administrators; a page must not deliver anything itself. Throttled through the cache,
    so several web processes log one silence once between them."""
    key = f"worker-silent:{last_seen.isoformat() if last_seen else 'never'}"
    if _noted["key"] == key:
        return
    _noted["key"] = key
    if cache.add(key, True, SILENCE_LOGGED_FOR):
        logger.warning(
            "No worker has polled since %s: statuses are not being updated; "
            "run `python manage.py poll_videos`.",
            last_seen.isoformat() if last_seen else "ever (none has run)",
        )


@dataclass(frozen=True)
class FailingJob:
    """A background job that keeps failing on a running worker (see videos.worker)."""

    name: str
    label: str
    failures: int
    since: datetime | None

    @classmethod
    def from_heartbeat(cls, job: dict) -> FailingJob:
        since = dateparse.parse_datetime(str(job.get("since") or ""))
        return cls(str(job.get("job", "")), str(job.get("label", "")), int(job.get("failures") or 0), since)


def held_back(now: datetime | None = None) -> list[dict]:
    """Every provider connection the worker is holding back, for /healthz's detail: the
    deployment's own (id None) and each workspace's, by id and name, blocked or paused
    until when. One query; never a key, nor a block's reason (it quotes the provider)."""
    now = now or timezone.now()
    states = (
        ProviderState.objects.filter(Q(paused_until__gt=now) | ~Q(blocked_reason=""))
        .select_related("connection__workspace")
        .order_by("pk")
    )
    found = []
    for state in states:
        connection = state.connection
        fingerprint = (
            key_fingerprint(settings.VIDEO_API_KEY) if connection is None else connection.key_fingerprint()
        )
        if state.is_blocked_for(fingerprint):
            held = {"state": "blocked", "since": state.blocked_at.isoformat() if state.blocked_at else None}
        elif state.is_paused(now):
            held = {"state": "paused", "until": state.paused_until.isoformat()}
        else:
            continue
        if connection is None:
            found.append({"id": None, "name": "the deployment's own", "base_url": state.base_url, **held})
        else:
            found.append(
                {"id": connection.pk, "name": connection.name, "workspace": connection.workspace.slug, **held}
            )
    return found


@dataclass(frozen=True)
class ConnectionTrouble:
    """A workspace connection the worker is holding back: blocked (its key refused, out of
    quota, or no longer readable) or paused (rate limited) until a time."""

    pk: int
    name: str
    blocked: str
    paused_until: datetime | None


@dataclass(frozen=True)
class WorkerStatus:
    last_seen: datetime | None
    # The deployment's own connection (VIDEO_API_BASE_URL / VIDEO_API_KEY).
    provider_blocked: str
    provider_paused_until: datetime | None
    # Shown to every signed-in person: what fails and since when, never the error itself
    # (that is in the worker's log and in /healthz with its token).
    failing_jobs: tuple[FailingJob, ...] = ()
    # The asking workspace's own connections that are blocked or paused, by name.
    connections: tuple[ConnectionTrouble, ...] = ()
    workspace_slug: str = ""

    @classmethod
    def current(cls, workspace: Workspace | None = None) -> WorkerStatus:
        """What a board says about the worker: the heartbeat, the deployment's own
        connection and, given a `workspace`, that workspace's connections. A constant number
        of queries: one for the connections' states (the deployment's and the workspace's
        together), and the heartbeat's."""
        now = timezone.now()
        default = settings.VIDEO_API_BASE_URL
        # The poller keys the deployment's row by the client's base URL (no trailing slash).
        wanted = Q(connection__isnull=True, base_url__in={default, default.rstrip("/")})
        if workspace is not None:
            wanted |= Q(connection__workspace=workspace) & (Q(paused_until__gt=now) | ~Q(blocked_reason=""))
        blocked, paused_until = "", None
        troubles = []
        for state in ProviderState.objects.filter(wanted).select_related("connection").order_by("pk"):
            connection = state.connection
            if connection is None:
                if state.is_blocked_for(key_fingerprint(settings.VIDEO_API_KEY)):
                    blocked = state.blocked_reason
                if state.is_paused(now) and paused_until is None:
                    paused_until = state.paused_until
                continue
            trouble = ConnectionTrouble(
                connection.pk,
                connection.name,
                state.blocked_reason if state.is_blocked_for(connection.key_fingerprint()) else "",
                state.paused_until if state.is_paused(now) else None,
            )
            if trouble.blocked or trouble.paused_until:
                troubles.append(trouble)
        last_seen, failing = WorkerHeartbeat.objects.overview(seen_since=heard_since(now))
        if is_silent(last_seen, now):
            note_silence(last_seen)
        return cls(
            last_seen,
            blocked,
            paused_until,
            tuple(FailingJob.from_heartbeat(job) for job in failing),
            tuple(sorted(troubles, key=lambda t: t.name.lower())),
            workspace.slug if workspace is not None else "",
        )

    @property
    def is_stale(self) -> bool:
        return is_silent(self.last_seen)
