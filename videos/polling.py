"""The poll engine: claim due tasks, ask the provider, fold the answers in, schedule.

HTTP runs in a pool of threads and never inside a database transaction; the database is
only touched from the calling thread, in short writes of the changed fields. One task's bad
answer or an exception while handling it is recorded on that task and never stops the pass.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from videos.client import (
    AuthError,
    NotFound,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    TaskAnswer,
    VideoAPIClient,
)
from videos.fetch_pool import FetchPool
from videos.models import ProviderState, TaskEvent, VideoTask, key_fingerprint
from videos.normalize import normalize, storable_json

logger = logging.getLogger("videos.poller")

# Steady cadence: every `interval` while a job is young, then slower for long jobs, up to
# this. Gateways refresh from upstream about every 15 s, so asking much faster buys nothing.
MAX_STEADY_DELAY = 30.0
YOUNG_JOB_SECONDS = 60.0
# Errors back off exponentially up to this, with jitter so a recovered provider is not hit
# by every task at once.
MAX_BACKOFF = 300.0
# On shutdown, how long requests already sent may still finish before their tasks are
# handed back unpolled. Platforms allow 5 s (Fly) to 30 s (Heroku) after SIGTERM.
SHUTDOWN_GRACE = 2.0


def steady_delay(interval: float, age: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds until the next poll of a healthy task that has been known for `age` seconds."""
    if age <= YOUNG_JOB_SECONDS:
        delay = interval
    else:
        delay = min(interval * age / YOUNG_JOB_SECONDS, max(interval, MAX_STEADY_DELAY))
    return delay * (0.9 + 0.2 * rng())


def backoff_delay(interval: float, attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the `attempt`-th failure in a row (1-based): exponential, with jitter."""
    ceiling = min(MAX_BACKOFF, interval * 2 ** min(max(attempt, 1), 20))
    return ceiling * (0.5 + 0.5 * rng())


@dataclass
class PassReport:
    claimed: int = 0
    polled: int = 0
    changed: int = 0
    errors: int = 0
    handed_back: int = 0
    # "paused" (rate limited) or "blocked" (key refused / out of quota) when the pass
    # stopped early because of the provider.
    provider: str = ""

    def __str__(self) -> str:
        text = (
            f"claimed {self.claimed}, polled {self.polled}, changed {self.changed}, "
            f"errors {self.errors}, handed back {self.handed_back}"
        )
        return text + (f", provider {self.provider}" if self.provider else "")


class Poller:
    """Polls the due tasks of one provider. `run_pass` is one pass; the command loops it."""

    def __init__(
        self,
        client: VideoAPIClient,
        *,
        interval: float = 5.0,
        concurrency: int = 16,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.interval = interval
        self.concurrency = concurrency
        # Two rounds of requests per claim keeps every thread busy without leasing far
        # more tasks than this worker can poll before their leases run out.
        self.batch_size = concurrency * 2
        per_request = client.connect_timeout + client.timeout
        self.lease = timedelta(seconds=2 * per_request + 30)
        self.rng = rng
        self.fingerprint = key_fingerprint(client.api_key)
        self._pool = FetchPool(concurrency)
        self._provider: ProviderState | None = None

    @classmethod
    def from_settings(cls) -> Poller:
        client = VideoAPIClient(
            settings.VIDEO_API_BASE_URL,
            settings.VIDEO_API_KEY,
            timeout=settings.VIDEO_API_TIMEOUT,
            max_response_bytes=settings.VIDEO_API_MAX_RESPONSE_BYTES,
            pool_size=settings.VIDEO_POLL_CONCURRENCY,
        )
        return cls(client, interval=settings.VIDEO_POLL_INTERVAL, concurrency=settings.VIDEO_POLL_CONCURRENCY)

    def close(self) -> None:
        self._pool.shutdown()
        self.client.close()

    def provider_state(self) -> ProviderState:
        state, _ = ProviderState.objects.get_or_create(base_url=self.client.base_url)
        return state

    def run_pass(self, should_stop: Callable[[], bool] = lambda: False) -> PassReport:
        """Poll every task due when the pass starts, once. Returns what happened."""
        report = PassReport()
        started = timezone.now()
        while not should_stop():
            self._provider = self.provider_state()
            if self._provider.is_blocked_for(self.fingerprint):
                report.provider = "blocked"
                break
            if self._provider.is_paused(timezone.now()):
                report.provider = "paused"
                break
            tasks = VideoTask.objects.claim_due(self.batch_size, self.lease, due_before=started)
            if not tasks:
                break
            report.claimed += len(tasks)
            self._poll_batch(tasks, report, should_stop)
        if report.polled or report.errors or report.provider:
            logger.info("poll pass: %s", report)
        return report

    def _poll_batch(
        self, tasks: list[VideoTask], report: PassReport, should_stop: Callable[[], bool]
    ) -> None:
        token = tasks[0].lease_token
        futures: dict[Future, VideoTask] = {
            self._pool.submit(self.client.retrieve, task.task_id): task for task in tasks
        }
        pending = set(futures)
        settled: set[Future] = set()
        grace_ends: float | None = None
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                self._settle(futures[future], future, report)
                settled.add(future)
            halted = self._provider_halted()
            if grace_ends is None and (should_stop() or halted):
                # Requests not yet sent are not sent; those in flight may finish within
                # the grace period, the rest are handed back.
                for future in pending:
                    future.cancel()
                grace_ends = time.monotonic() + (SHUTDOWN_GRACE if should_stop() else self.client.timeout)
            if grace_ends is not None:
                pending = {f for f in pending if not f.cancelled()}
                if time.monotonic() >= grace_ends:
                    break
        unsettled = [task for future, task in futures.items() if future not in settled]
        if unsettled:
            when = self._provider.paused_until if self._provider and self._provider.paused_until else None
            report.handed_back += VideoTask.objects.release(
                token, [task.pk for task in unsettled], max(when, timezone.now()) if when else timezone.now()
            )

    def _provider_halted(self) -> bool:
        state = self._provider
        return state is not None and (
            state.is_blocked_for(self.fingerprint) or state.is_paused(timezone.now())
        )

    def _settle(self, task: VideoTask, future: Future, report: PassReport) -> None:
        """Fold one finished request into its task and write it. Never raises."""
        token = task.lease_token
        now = timezone.now()
        try:
            fields, events = self._apply(task, future, now)
            task.last_polled_at = now
            task.poll_count += 1
            fields |= {"last_polled_at", "next_poll_at", "poll_count"}
            if task.save_poll_result(token, fields, events):
                report.polled += 1
                if events:
                    report.changed += 1
                    for event in events:
                        if event.kind == TaskEvent.Kind.STATUS:
                            logger.info(
                                "task %s (%s): %s -> %s",
                                task.pk,
                                task.task_id,
                                event.previous_status,
                                task.status,
                            )
            else:
                logger.warning("task %s: lease lost before its result was written; dropped", task.pk)
        except Exception:
            # A bug or a database error on one task must not end the pass for the others.
            report.errors += 1
            logger.exception("task %s (%s): could not record the poll result", task.pk, task.task_id)
            try:
                VideoTask.objects.release(
                    token, [task.pk], now + timedelta(seconds=backoff_delay(self.interval, 3))
                )
            except Exception:
                logger.exception("task %s: could not hand it back either", task.pk)

    def _apply(self, task: VideoTask, future: Future, now: datetime) -> tuple[set[str], list[TaskEvent]]:
        """Decide the task's new fields (in memory) from the request's outcome."""
        try:
            answer: TaskAnswer = future.result()
        except ProviderError as error:
            return self._apply_error(task, error, now)
        except Exception:
            logger.exception("task %s (%s): unexpected error while polling", task.pk, task.task_id)
            return self._record_error(task, "Internal error while polling; see the worker log.", now)

        try:
            snapshot = normalize(answer.payload)
        except Exception:
            logger.exception("task %s (%s): could not normalise the answer", task.pk, task.task_id)
            return self._record_error(
                task, "The provider's answer could not be read; see the worker log.", now
            )
        fields, events = task.apply_snapshot(snapshot, now)
        payload = storable_json(answer.payload)
        if task.raw_payload != payload:
            task.raw_payload = payload
            fields.add("raw_payload")
        for field, healthy in (("consecutive_errors", 0), ("not_found_count", 0), ("last_error", "")):
            if getattr(task, field) != healthy:
                setattr(task, field, healthy)
                fields.add(field)
        if task.is_terminal:
            task.next_poll_at = None
        else:
            known_since = task.remote_created_at or task.created_at
            delay = steady_delay(self.interval, (now - known_since).total_seconds(), self.rng)
            task.next_poll_at = now + timedelta(seconds=max(delay, answer.poll_after or 0))
        return fields, events

    def _apply_error(
        self, task: VideoTask, error: ProviderError, now: datetime
    ) -> tuple[set[str], list[TaskEvent]]:
        if isinstance(error, NotFound):
            fields, events = task.apply_not_found(now)
            task.last_error = error.message
            fields.add("last_error")
            delay = backoff_delay(self.interval, task.not_found_count, self.rng)
            task.next_poll_at = None if task.is_terminal else now + timedelta(seconds=delay)
            return fields, events
        if isinstance(error, RateLimited):
            wait_for = error.retry_after
            if wait_for is None:
                wait_for = backoff_delay(self.interval, task.consecutive_errors + 1, self.rng)
            until = now + timedelta(seconds=wait_for)
            self._provider.pause_until(until)
            logger.warning("provider %s rate limited us; pausing until %s", self.client.base_url, until)
            task.last_error = error.message
            task.next_poll_at = until
            return {"last_error"}, []
        if isinstance(error, AuthError | QuotaExceeded):
            if not self._provider.is_blocked_for(self.fingerprint):
                self._provider.block(error.message, self.fingerprint)
                logger.error(
                    "provider %s: %s Polling stops until the key changes or an operator resumes it.",
                    self.client.base_url,
                    error.message,
                )
            task.last_error = error.message
            task.next_poll_at = now
            return {"last_error"}, []
        return self._record_error(task, error.message, now)

    def _record_error(self, task: VideoTask, message: str, now: datetime) -> tuple[set[str], list[TaskEvent]]:
        task.consecutive_errors += 1
        task.last_error = message[:500]
        delay = backoff_delay(self.interval, task.consecutive_errors, self.rng)
        task.next_poll_at = now + timedelta(seconds=delay)
        logger.warning("task %s (%s): %s (retry in %.0f s)", task.pk, task.task_id, message, delay)
        return {"consecutive_errors", "last_error"}, []
