"""Is anything polling? What the dashboard's banner says about the worker and the provider."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import dateparse, timezone

from videos.models import ProviderState, WorkerHeartbeat, key_fingerprint

# A worker that has not been seen for this long is reported as not polling.
STALE_AFTER = timedelta(minutes=1)


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
        last_seen, failing = WorkerHeartbeat.objects.overview(seen_since=timezone.now() - STALE_AFTER)
        return cls(
            last_seen,
            blocked,
            paused_until,
            tuple(FailingJob.from_heartbeat(job) for job in failing),
        )

    @property
    def is_stale(self) -> bool:
        return self.last_seen is None or timezone.now() - self.last_seen > STALE_AFTER
