"""The poll engine: claim due tasks, ask the provider, fold the answers in, schedule.

One pass keeps up to two rounds of requests queued for a pool of threads, claiming more
due tasks as answers come back, so the threads never wait on the database. HTTP never runs
inside a database transaction; answers are folded in on the calling thread and written in
small batches, one short transaction each, touching only the fields that changed. One
task's bad answer, or an exception while handling it, is recorded on that task and never
stops the pass.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from videos import keep as copies
from videos.client import (
    AuthError,
    NotFound,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    TaskAnswer,
    VideoAPIClient,
)
from videos.fetch_pool import NOT_RUN, FetchPool
from videos.models import ProviderState, TaskEvent, VideoTask, key_fingerprint
from videos.normalize import normalize, storable_json
from videos.scrub import scrub_json

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
# Results are written when this many are waiting, or when the oldest has waited this long:
# one commit per batch instead of one per task, without holding news back noticeably.
WRITE_BATCH = 50
WRITE_WAIT = 0.1
# Tasks waiting out a rate-limit pause fall due at random over this fraction of the pause
# after it ends (at most RELEASE_SPREAD_MAX seconds), not all in the same second.
RELEASE_SPREAD = 0.1
RELEASE_SPREAD_MAX = 30.0


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
    # "paused" (rate limited), "probing" (one request sent to learn whether a pause is
    # over) or "blocked" (key refused / out of quota) when the provider held the pass back.
    provider: str = ""

    def __str__(self) -> str:
        text = (
            f"claimed {self.claimed}, polled {self.polled}, changed {self.changed}, "
            f"errors {self.errors}, handed back {self.handed_back}"
        )
        return text + (f", provider {self.provider}" if self.provider else "")


@dataclass
class _Result:
    task: VideoTask
    fields: set[str]
    events: list[TaskEvent]


class Poller:
    """Polls the due tasks of one provider. `run_pass` is one pass; the command loops it."""

    def __init__(
        self,
        client: VideoAPIClient,
        *,
        interval: float = 5.0,
        concurrency: int = 16,
        lease: float = 0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.interval = interval
        self.concurrency = concurrency
        # Two rounds of requests queued keeps every thread busy while answers are folded
        # in, without leasing far more tasks than this worker can poll in time.
        self.batch_size = concurrency * 2
        self.refill_below = concurrency + (concurrency + 1) // 2
        # Long enough for a task to wait its turn in the queue and then time out, with room
        # to write the result; a shorter lease would let another worker poll it twice.
        per_request = client.connect_timeout + client.timeout
        self.lease = timedelta(seconds=lease or 2 * per_request + 30)
        self.rng = rng
        self.fingerprint = key_fingerprint(client.api_key)
        self._pool = FetchPool(concurrency)
        self._provider: ProviderState | None = None
        # Set by a fetch thread the moment the provider says "stop" (429, 401/403, quota),
        # so the other threads send nothing more before the main thread has even seen it.
        self._halted = threading.Event()
        # The probe this worker sent after a pause (the task, and the hold's end), until
        # its outcome is known; see ProviderState.claim_probe.
        self._probe: tuple[VideoTask, datetime] | None = None
        # When each request in flight started (written by the pool threads). The client's
        # deadline ends a request in `timeout` s; this is the pass's own guard beyond it,
        # for what no socket deadline covers (a hung DNS lookup, a stuck thread).
        self._sent_at: dict[int, float] = {}
        self.overdue_after = client.connect_timeout + client.timeout + 5.0

    @classmethod
    def from_settings(cls) -> Poller:
        client = VideoAPIClient.from_settings(pool_size=settings.VIDEO_POLL_CONCURRENCY)
        return cls(
            client,
            interval=settings.VIDEO_POLL_INTERVAL,
            concurrency=settings.VIDEO_POLL_CONCURRENCY,
            lease=settings.VIDEO_POLL_LEASE,
        )

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
        results: queue.SimpleQueue = queue.SimpleQueue()
        cancelled = threading.Event()
        self._halted.clear()
        self._sent_at.clear()
        next_overdue_check = time.monotonic() + 1.0
        in_flight: dict[int, VideoTask] = {}
        unsent: list[VideoTask] = []
        writes: list[_Result] = []
        oldest_write = 0.0
        claiming = True
        grace_ends: float | None = None

        while True:
            # Claim more while half a round is still queued, so no thread runs dry while
            # the claim itself is on its way to the database.
            if claiming and len(in_flight) < self.refill_below:
                claiming = self._top_up(in_flight, started, report, results, cancelled)
            if not in_flight:
                break

            had_writes = bool(writes)
            self._collect(results, in_flight, unsent, writes, 0.02 if writes else 0.2)
            if writes and not had_writes:
                oldest_write = time.monotonic()

            if time.monotonic() >= next_overdue_check:
                # Once a second is plenty for a guard measured in tens of seconds, and keeps
                # the scan of every request in flight off the per-answer path.
                next_overdue_check = time.monotonic() + 1.0
                report.handed_back += self._give_up_overdue(in_flight)
            if writes and (
                len(writes) >= WRITE_BATCH or not in_flight or time.monotonic() - oldest_write >= WRITE_WAIT
            ):
                self._write(writes, report)
                writes = []
            if claiming and self._halted.is_set():
                # Nothing more is sent; what is in flight may still answer.
                claiming = False
                cancelled.set()
            if grace_ends is None and should_stop():
                claiming = False
                cancelled.set()
                grace_ends = time.monotonic() + SHUTDOWN_GRACE
            if grace_ends is not None and time.monotonic() >= grace_ends:
                break

        if writes:
            self._write(writes, report)
        leftovers = unsent + list(in_flight.values())
        if leftovers:
            report.handed_back += self._hand_back(leftovers)
        if self._halted.is_set() and not report.provider:
            report.provider = "blocked" if self._provider_blocked() else "paused"
        if report.polled or report.errors or report.provider:
            logger.info("poll pass: %s", report)
        return report

    def _top_up(
        self,
        in_flight: dict[int, VideoTask],
        started: datetime,
        report: PassReport,
        results: queue.SimpleQueue,
        cancelled: threading.Event,
    ) -> bool:
        """Claim more due tasks and queue their requests. False when none was left."""
        claimed = self._claim(self.batch_size - len(in_flight), started, report)
        for task in claimed:
            in_flight[task.pk] = task
            self._pool.submit(task.pk, partial(self._fetch, task.pk, task.task_id), results, cancelled)
        return bool(claimed)

    def _collect(
        self,
        results: queue.SimpleQueue,
        in_flight: dict[int, VideoTask],
        unsent: list[VideoTask],
        writes: list[_Result],
        wait: float,
    ) -> None:
        """Take every answer that has arrived (waiting up to `wait` for the first) and fold
        it in: into `writes`, or `unsent` for a request dropped before it was sent."""
        item = self._next_result(results, wait)
        while item is not None:
            pk, value, error = item
            self._sent_at.pop(pk, None)
            task = in_flight.pop(pk, None)
            if task is None:
                pass  # given up on as overdue and handed back already; its late answer is dropped
            elif value is NOT_RUN:
                unsent.append(task)
            else:
                writes.append(self._fold(task, value, error))
            item = self._next_result(results, 0)

    @staticmethod
    def _next_result(results: queue.SimpleQueue, timeout: float) -> Any:
        try:
            return results.get(timeout=timeout) if timeout else results.get_nowait()
        except queue.Empty:
            return None

    def _claim(self, limit: int, started: datetime, report: PassReport) -> list[VideoTask]:
        """Lease up to `limit` more due tasks, unless the provider is blocked or paused.

        Right after a pause, one task only: the probe. The others wait until it has been
        answered without a 429 (the next claim then ends the pause for every worker).
        """
        now = timezone.now()
        self._provider = state = self.provider_state()
        if state.is_blocked_for(self.fingerprint):
            report.provider = "blocked"
            return []
        if self._probe is not None:
            probe, hold = self._probe
            if state.paused_until == hold and hold > now and probe.lease_token is not None:
                report.provider = "probing"  # still on its way
                return []
            if state.paused_until == hold and probe.lease_token is None:
                # Its answer was written, and it was no 429: that would have restarted the pause.
                state.end_probe(hold, answered=True)
                report.provider = ""
                logger.info("provider %s answered the probe; the pause is over", self.client.base_url)
            self._probe = None
        if state.is_paused(now):
            report.provider = "paused"
            return []
        if state.probe_due(now):
            return self._claim_probe(state, now, started, report)
        tasks = VideoTask.objects.claim_due(max(limit, 1), self.lease, due_before=started)
        report.claimed += len(tasks)
        return tasks

    def _claim_probe(
        self, state: ProviderState, now: datetime, started: datetime, report: PassReport
    ) -> list[VideoTask]:
        hold = state.claim_probe(now, self.lease)
        if hold is None:
            report.provider = "paused"  # another worker is probing
            return []
        tasks = VideoTask.objects.claim_due(1, self.lease, due_before=started)
        if not tasks:
            state.end_probe(hold, answered=False)  # nothing to ask about yet
            return []
        self._probe = (tasks[0], hold)
        report.provider = "probing"
        report.claimed += 1
        return tasks

    def _fetch(self, pk: int, task_id: str) -> Any:
        """Runs on a pool thread: one request, unless the provider has said stop."""
        if self._halted.is_set():
            return NOT_RUN
        self._sent_at[pk] = time.monotonic()
        try:
            return self.client.retrieve(task_id)
        except (RateLimited, AuthError, QuotaExceeded):
            self._halted.set()
            raise

    def _give_up_overdue(self, in_flight: dict[int, VideoTask]) -> int:
        """Hand back, with a backoff, the tasks whose request has run past its deadline, so
        the pass goes on without them; their late answers are dropped. Returns how many."""
        cutoff = time.monotonic() - self.overdue_after
        overdue = [pk for pk, at in list(self._sent_at.items()) if at < cutoff and pk in in_flight]
        if not overdue:
            return 0
        tasks = []
        for pk in overdue:
            self._sent_at.pop(pk, None)
            tasks.append(task := in_flight.pop(pk))
            logger.warning("task %s (%s): no answer past the request deadline; handed back", pk, task.task_id)
        return self._release(
            tasks, timezone.now() + timedelta(seconds=backoff_delay(self.interval, 1, self.rng))
        )

    def _provider_blocked(self) -> bool:
        return self._provider is not None and self._provider.is_blocked_for(self.fingerprint)

    def _hand_back(self, tasks: list[VideoTask]) -> int:
        """Release tasks that were claimed but not polled: due again at once, or spread over
        a short window after the provider's pause ends."""
        state = self._provider
        if self._probe is not None and state is not None:
            probe, hold = self._probe
            if any(task.pk == probe.pk for task in tasks):
                state.end_probe(hold, answered=False)  # never answered: the next one goes first
                self._probe = None
        now = timezone.now()
        when, spread = now, timedelta(0)
        if state is not None and state.is_paused(now):
            when, spread = state.paused_until, self._release_spread(state.paused_until - now)
        return self._release(tasks, when, spread=spread)

    def _release(self, tasks: list[VideoTask], when: datetime, *, spread: timedelta = timedelta(0)) -> int:
        """Hand `tasks` back under the lease each was claimed with, due at `when` (spread
        over `spread` after it). Returns how many were still this worker's to hand back."""
        by_token: dict[Any, list[int]] = {}
        for task in tasks:
            by_token.setdefault(task.lease_token, []).append(task.pk)
        return sum(
            VideoTask.objects.release(token, pks, when, spread=spread, rng=self.rng)
            for token, pks in by_token.items()
        )

    @staticmethod
    def _release_spread(pause: timedelta) -> timedelta:
        return min(pause * RELEASE_SPREAD, timedelta(seconds=RELEASE_SPREAD_MAX))

    def _fold(self, task: VideoTask, value: Any, error: BaseException | None) -> _Result:
        """Decide the task's new fields (in memory) from one request's outcome. Never raises."""
        now = timezone.now()
        try:
            if error is None:
                fields, events = self._apply_answer(task, value, now)
            elif isinstance(error, ProviderError):
                fields, events = self._apply_error(task, error, now)
            else:
                logger.error(
                    "task %s (%s): unexpected error while polling", task.pk, task.task_id, exc_info=error
                )
                fields, events = self._record_error(
                    task, "Internal error while polling; see the worker log.", now
                )
        except Exception:
            logger.exception("task %s (%s): could not read the provider's answer", task.pk, task.task_id)
            fields, events = self._record_error(
                task, "The provider's answer could not be read; see the worker log.", now
            )
        task.last_polled_at = now
        task.poll_count += 1
        fields |= {"last_polled_at", "next_poll_at", "poll_count"}
        return _Result(task, fields, events)

    def _write(self, results: list[_Result], report: PassReport) -> None:
        """Write a batch in one transaction; if that fails, task by task, so one poison
        value costs one task, not the batch."""
        try:
            written = VideoTask.objects.save_poll_results([(r.task, r.fields, r.events) for r in results])
        except DatabaseError:
            logger.warning(
                "a batch of %d results failed to save; saving one by one", len(results), exc_info=True
            )
            written = set()
            for result in results:
                try:
                    written |= VideoTask.objects.save_poll_results(
                        [(result.task, result.fields, result.events)]
                    )
                except DatabaseError:
                    report.errors += 1
                    logger.exception(
                        "task %s (%s): could not save the poll result", result.task.pk, result.task.task_id
                    )
                    self._release_after_error(result.task)
        for result in results:
            task = result.task
            if task.pk not in written:
                logger.warning("task %s: lease lost before its result was written; dropped", task.pk)
                continue
            report.polled += 1
            if result.events:
                report.changed += 1
            for event in result.events:
                if event.kind == TaskEvent.Kind.STATUS:
                    logger.info(
                        "task %s (%s): %s -> %s", task.pk, task.task_id, event.previous_status, task.status
                    )

    def _release_after_error(self, task: VideoTask) -> None:
        try:
            self._release(
                [task], timezone.now() + timedelta(seconds=backoff_delay(self.interval, 3, self.rng))
            )
        except DatabaseError:
            logger.exception("task %s: could not hand it back either; its lease will expire", task.pk)

    def _apply_answer(
        self, task: VideoTask, answer: TaskAnswer, now: datetime
    ) -> tuple[set[str], list[TaskEvent]]:
        # Providers echo the key (in errors, metadata, anywhere): scrubbed before any of the
        # answer is read, cut to a column, stored or shown (error_message, raw_payload...).
        payload = scrub_json(answer.payload, self.client.api_key)
        fields, events = task.apply_snapshot(normalize(payload), now)
        fields |= copies.start(task, now)
        # Always the latest answer (never compared: claim_due leaves the old one unloaded).
        task.raw_payload = storable_json(payload)
        fields.add("raw_payload")
        for field, healthy in (("consecutive_errors", 0), ("not_found_count", 0), ("last_error", "")):
            if getattr(task, field) != healthy:
                setattr(task, field, healthy)
                fields.add(field)
        if task.is_terminal:
            task.next_poll_at = None
            return fields, events
        known_since = task.remote_created_at or task.created_at
        delay = steady_delay(self.interval, (now - known_since).total_seconds(), self.rng)
        if task.eta_at is not None:
            # Near the expected finish, look sooner than the steady cadence would, but not
            # more often than the base interval.
            delay = min(delay, max(self.interval, (task.eta_at - now).total_seconds()))
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
            state = self._provider or self.provider_state()
            probing = self._probe is not None and self._probe[0].pk == task.pk
            if probing:
                self._probe = None
            before = state.paused_until
            # Capped at MAX_PAUSE, then another probe; the probe's 429 starts it over.
            until = state.pause_until(now + timedelta(seconds=wait_for), now, restart=probing)
            if until != before:
                logger.warning(
                    "provider %s rate limited us%s; pausing until %s",
                    self.client.base_url,
                    " again (the probe)" if probing else "",
                    until,
                )
            task.last_error = error.message
            spread = self._release_spread(until - now)
            task.next_poll_at = until + spread * self.rng()
            return {"last_error"}, []
        if isinstance(error, AuthError | QuotaExceeded):
            state = self._provider or self.provider_state()
            if not state.is_blocked_for(self.fingerprint):
                state.block(error.message, self.fingerprint)
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
