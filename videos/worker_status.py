"""Is anything polling? What the dashboard's banner says about the worker and the provider."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from videos.models import ProviderState, WorkerHeartbeat, key_fingerprint

# A worker that has not been seen for this long is reported as not polling.
STALE_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class WorkerStatus:
    last_seen: datetime | None
    provider_blocked: str
    provider_paused_until: datetime | None

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
        return cls(WorkerHeartbeat.objects.latest_seen(), blocked, paused_until)

    @property
    def is_stale(self) -> bool:
        return self.last_seen is None or timezone.now() - self.last_seen > STALE_AFTER
