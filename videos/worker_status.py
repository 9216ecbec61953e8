"""Is anything polling? What the dashboard's banner says about the worker and the provider."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import dateparse, timezone

from videos.models import ProviderState, WorkerHeartbeat, key_fingerprint

# A worker that has not been seen for this long is reported as not polling.
STALE_AFTER = timedelta(minutes=1)


def heard_since(now: datetime) -> datetime:
    """The oldest heartbeat of a worker that has not gone silent: the one rule for "is the
    worker alive", read by the dashboard's banner, /healthz and poll_stats."""
    return now - STALE_AFTER


def is_silent(last_seen: datetime | None, now: datetime | None = None) -> bool:
    """Whether a worker last seen at `last_seen` (None: never) has gone silent."""
    return last_seen is None or last_seen < heard_since(now or timezone.now())


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


@dataclass(frozen=True)
class WorkerStatus:
    last_seen: datetime | None
    provider_blocked: str
    provider_paused_until: datetime | None
    # Shown to every signed-in person: what fails and since when, never the error itself
    # (that is in the worker's log and in /healthz with its token).
    failing_jobs: tuple[FailingJob, ...] = ()

    @classmethod
    def current(cls) -> WorkerStatus:
        state = ProviderState.objects.filter(base_url=settings.VIDEO_API_BASE_URL).first()
        blocked = ""
        paused_until = None
        if state is not None:
            if state.is_blocked_for(key_fingerprint(settings.VIDEO_API_KEY)):
                blocked = state.blocked_reason
            if state.is_paused(timezone.now()):
                paused_until = state.paused_until
        last_seen, failing = WorkerHeartbeat.objects.overview(seen_since=heard_since(timezone.now()))
        return cls(
            last_seen,
            blocked,
            paused_until,
            tuple(FailingJob.from_heartbeat(job) for job in failing),
        )

    @property
    def is_stale(self) -> bool:
        return is_silent(self.last_seen)
