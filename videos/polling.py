"""The poll engine: claim due tasks, ask the provider, fold the answers in, schedule.

One pass keeps up to two rounds of requests queued for a pool of threads, claiming more
due tasks as answers come back, so the threads never wait on the database. HTTP never runs
inside a database transaction; answers are folded in on the calling thread and written in
small batches, one short transaction each, touching only the fields that changed. One
task's bad answer, or an exception while handling it, is recorded on that task and never
stops the pass.
"""

from __future__ import annotations

import dataclasses
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
from django.db.models import Q
from django.utils import timezone

from dashboard.encryption import Unreadable
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
from videos.models import (
    UNREADABLE_KEY_REASON,
    ProviderConnection,
    ProviderState,
    Status,
    TaskEvent,
    VideoTask,
    key_fingerprint,
)
from videos.normalize import normalize, storable_json
from videos.scrub import scrub_json

logger = logging.getLogger("videos.poller")

# Steady cadence: every `interval` while a job is young, then slower for long jobs, up to
# this. Gateways refresh from upstream about every 15 s, so asking much faster buys nothing.
MAX_STEADY_DELAY = 30.0
YOUNG_JOB_SECONDS = 60.0
# A queued job tells nothing but "still queued": polled on the steady ramp, but never
# slower than this, so the start of processing (the base of the ETA) is seen promptly.
MAX_PENDING_DELAY = 15.0
# With an ETA (the provider reports progress): while the finish is far, wait this fraction
# of the time left, at most MAX_ETA_DELAY, so each poll cuts the distance by a third and a
# job that turns out faster than its pace so far is still caught in time. Within
# NEAR_ETA_INTERVALS intervals of the ETA, the next poll lands on it; past it (a job slower
# than predicted), every interval.
ETA_FRACTION = 1 / 3
MAX_ETA_DELAY = 60.0
NEAR_ETA_INTERVALS = 3
# A connection whose provider sent a verified webhook lately tells us itself when a job
# ends: polling is only the safety net for a lost hook, about once a minute, never slower.
PUSH_ACTIVE_FOR = timedelta(days=1)
PUSH_SAFETY_NET = 60.0
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
# Workspace connections are read again at most this often: a new key, base URL or request
# ceiling reaches a running worker within seconds, without a query per claim.
CONNECTIONS_TTL = 5.0


def _signature(connection: ProviderConnection) -> tuple:
    """What a connection's client is built from (see ConnectionRuntime.signature)."""
    return (connection.base_url, connection.key_fingerprint(), connection.max_rps)


def _jitter(rng: Callable[[], float]) -> float:
    # ±10 %, so tasks created together do not stay in step forever (the callers never go
    # below the interval: a young task's polls vary between 1 and 1.1 intervals).
    return 0.9 + 0.2 * rng()


def steady_delay(interval: float, age: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds until the next poll of a healthy task that has been known for `age` seconds
    (and whose finish cannot be estimated): every interval while young, then slower. Never
    less than the interval."""
    if age <= YOUNG_JOB_SECONDS:
        delay = interval
    else:
        delay = min(interval * age / YOUNG_JOB_SECONDS, max(interval, MAX_STEADY_DELAY))
    return max(interval, delay * _jitter(rng))


def eta_delay(interval: float, remaining: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds until the next poll of a processing task expected to finish in `remaining`
    seconds (negative: the ETA has passed). Never less than the interval.

    Far from the ETA: a fraction of the time left (at most MAX_ETA_DELAY), and always at
    least NEAR_ETA_INTERVALS - 1 intervals before it, so the poll near the end still comes.
    Near it: on the ETA. Past it (the job is slower than its pace said): every interval.
    """
    near = NEAR_ETA_INTERVALS * interval
    if remaining <= interval:
        return interval
    if remaining <= near:
        return remaining
    delay = min(remaining * ETA_FRACTION * _jitter(rng), MAX_ETA_DELAY)
    return max(interval, min(delay, remaining - (near - interval)))


def poll_delay(
    interval: float,
    *,
    pending: bool,
    age: float,
    eta_in: float | None,
    push_active: bool = False,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds until the next poll of a healthy, unfinished task: the one cadence rule.

    `age`: seconds since the task was created; `eta_in`: seconds to its ETA (None when
    there is none); `push_active`: its connection's provider has been sending webhooks.
    """
    if push_active:
        # About a minute, never above: the hook is the news, this is the safety net.
        return max(interval, PUSH_SAFETY_NET * (0.9 + 0.1 * rng()))
    if pending:
        return min(steady_delay(interval, age, rng), max(interval, MAX_PENDING_DELAY))
    if eta_in is not None:
        return eta_delay(interval, eta_in, rng)
    return steady_delay(interval, age, rng)


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
    # over) or "blocked" (key refused / out of quota / unreadable) when the provider held
    # the pass back: `provider` for the deployment's own connection, `connections` for a
    # workspace's (by "name (#pk)").
    provider: str = ""
    connections: dict[str, str] = dataclasses.field(default_factory=dict)

    def note(self, runtime: ConnectionRuntime, state: str) -> None:
        if runtime.key is None:
            self.provider = state
        elif state:
            self.connections[runtime.label] = state
        else:
            self.connections.pop(runtime.label, None)

    def state_of(self, runtime: ConnectionRuntime) -> str:
        return self.provider if runtime.key is None else self.connections.get(runtime.label, "")

    def __str__(self) -> str:
        text = (
            f"claimed {self.claimed}, polled {self.polled}, changed {self.changed}, "
            f"errors {self.errors}, handed back {self.handed_back}"
        )
        text += f", provider {self.provider}" if self.provider else ""
        return text + "".join(f", {label} {state}" for label, state in sorted(self.connections.items()))


@dataclass
class _Result:
    task: VideoTask
    fields: set[str]
    events: list[TaskEvent]


class ConnectionRuntime:
    """What the poller holds for one provider connection: its client, its state row (a
    pause or a block, shared with the other workers), and this pass's halt and probe.

    `key` is the connection's pk, None for the deployment's own (VIDEO_API_BASE_URL). A
    connection whose stored key cannot be decrypted has no client: it stays blocked.
    """

    def __init__(
        self,
        key: int | None,
        client: VideoAPIClient | None,
        fingerprint: str,
        *,
        connection: ProviderConnection | None = None,
        base_url: str = "",
    ) -> None:
        self.key = key
        self.client = client
        self.fingerprint = fingerprint
        self.connection = connection
        self.base_url = client.base_url if client is not None else base_url.rstrip("/")
        # What the client was built from: a change of any rebuilds it.
        self.signature = _signature(connection) if connection is not None else ()
        self.state: ProviderState | None = None
        # Set by a fetch thread the moment the provider says "stop" (429, 401/403, quota),
        # so the other threads send nothing more to it before the main thread has seen it.
        self.halted = threading.Event()
        # The probe this worker sent after a pause (the task, and the hold's end), until
        # its outcome is known; see ProviderState.claim_probe.
        self.probe: tuple[VideoTask, datetime] | None = None
        # The pass's own guard beyond the client's deadline (see Poller.overdue_after).
        self.overdue_after = client.connect_timeout + client.timeout + 5.0 if client is not None else 0.0

    @property
    def label(self) -> str:
        """How log lines and reports name it: never with its key."""
        if self.connection is None:
            return self.base_url
        return f"{self.connection.name} (#{self.key})"

    def describe(self) -> str:
        if self.connection is None:
            return f"provider {self.base_url}"
        return (
            f"connection #{self.key} {self.connection.name!r} of workspace "
            f"{self.connection.workspace.slug!r} ({self.base_url})"
        )

    def is_blocked(self) -> bool:
        return self.state is not None and self.state.is_blocked_for(self.fingerprint)

    def push_active(self, now: datetime) -> bool:
        """Whether its provider has sent a verified webhook lately (see PUSH_ACTIVE_FOR).
        The deployment's own connection receives none. Read from the row the poller
        re-reads every CONNECTIONS_TTL, so a first hook slows polling within seconds."""
        last = self.connection.last_hook_at if self.connection is not None else None
        return last is not None and now - last < PUSH_ACTIVE_FOR

    def close(self) -> None:
        # The deployment's client belongs to the Poller's caller, who closes it.
        if self.connection is not None and self.client is not None:
            self.client.close()


class Poller:
    """Polls the due tasks, each on its own provider connection. `run_pass` is one pass;
    the command loops it.

    `client` is the deployment's own connection (tasks without one); a workspace's
    connection gets a client of its own, built from the stored row and rebuilt when its
    base URL, key or request ceiling changes. Pauses, blocks and request ceilings are per
    connection: a claim leaves out the tasks of every connection that is paused, blocked
    or halted, so one team's refused key or rate limit never holds another's tasks. The
    fetch threads are shared by all of them.
    """

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
        self._default = ConnectionRuntime(None, client, self.fingerprint)
        # Every connection's runtime by pk (None: the deployment's own), read again from the
        # database at most every CONNECTIONS_TTL seconds.
        self._runtimes: dict[int | None, ConnectionRuntime] = {None: self._default}
        self._connections_read_at: float | None = None
        # Runtimes replaced while their requests may still be in flight: closed after the pass.
        self._retired: list[ConnectionRuntime] = []
        # The runtime each claimed task is polled with, until its answer is folded in or it
        # is handed back (a runtime replaced meanwhile still serves its own requests).
        self._route: dict[int, ConnectionRuntime] = {}
        # When each request in flight started, and how long it may take (written by the
        # pool threads). The client's deadline ends a request in `timeout` s; this is the
        # pass's own guard beyond it, for what no socket deadline covers (a hung DNS
        # lookup, a stuck thread). `overdue_after` is the deployment connection's.
        self._sent_at: dict[int, tuple[float, float]] = {}
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
        for runtime in [*self._runtimes.values(), *self._retired]:
            runtime.close()
        self._runtimes = {None: self._default}
        self._retired = []
        self.client.close()

    def provider_state(self) -> ProviderState:
        """The state row of the deployment's own connection."""
        return ProviderState.for_connection(None, self.client.base_url)

    def client_for(self, connection_id: int | None) -> VideoAPIClient | None:
        """The client this worker polls `connection_id`'s tasks with (None: the deployment's
        own connection); None when that connection is unknown or its key unreadable. The
        Poller owns it: do not close it."""
        self._refresh_connections()
        runtime = self._runtimes.get(connection_id) or self._add_connections({connection_id})
        return runtime.client if runtime is not None else None

    # Connections

    def _refresh_connections(self, *, force: bool = False) -> None:
        """Read every workspace connection again (one query) when the last read is older than
        CONNECTIONS_TTL: a new one gets a runtime, a changed one (base URL, key, ceiling) a
        new client, a removed one goes."""
        now = time.monotonic()
        last = self._connections_read_at
        if not force and last is not None and now - last < CONNECTIONS_TTL:
            return
        self._connections_read_at = now
        seen: set[int | None] = {None}
        for connection in ProviderConnection.objects.select_related("workspace"):
            seen.add(connection.pk)
            runtime = self._runtimes.get(connection.pk)
            if (
                runtime is not None
                and runtime.signature == _signature(connection)
                and runtime.client is not None
            ):
                runtime.connection = connection  # a new name is just shown
                continue
            self._replace(connection.pk, self._runtime_for(connection))
        for key in set(self._runtimes) - seen:
            self._replace(key, None)

    def _add_connections(self, keys: set[int | None]) -> ConnectionRuntime | None:
        """Runtimes for connections created since the last read (tasks of theirs were just
        claimed); returns the runtime of one of them, for `client_for`."""
        found = None
        for connection in ProviderConnection.objects.select_related("workspace").filter(pk__in=keys - {None}):
            found = self._runtimes[connection.pk] = self._runtime_for(connection)
        return found

    def _replace(self, key: int | None, runtime: ConnectionRuntime | None) -> None:
        old = self._runtimes.pop(key, None)
        if old is not None:
            self._retired.append(old)
        if runtime is not None:
            self._runtimes[key] = runtime

    def _runtime_for(self, connection: ProviderConnection) -> ConnectionRuntime:
        fingerprint = connection.key_fingerprint()
        try:
            client = VideoAPIClient.for_connection(connection, pool_size=self.concurrency)
        except Unreadable:
            client = None  # blocked at the next claim (see _held_back), named in the log there
        return ConnectionRuntime(
            connection.pk, client, fingerprint, connection=connection, base_url=connection.base_url
        )

    def _read_states(self) -> None:
        """Every runtime's state row, in one query: the deployment's own, and the connections
        that are paused or blocked (a connection without a row, or with a clean one, is
        healthy)."""
        rows = ProviderState.objects.filter(
            Q(connection__isnull=True, base_url=self.client.base_url)
            | Q(connection__isnull=False) & (Q(paused_until__isnull=False) | ~Q(blocked_reason=""))
        )
        states = {row.connection_id: row for row in rows}
        for key, runtime in self._runtimes.items():
            runtime.state = states.get(key)

    def _state(self, runtime: ConnectionRuntime) -> ProviderState:
        """The runtime's state row, made when there is none yet (to pause or block it)."""
        if runtime.state is None:
            runtime.state = ProviderState.for_connection(runtime.connection, runtime.base_url)
        return runtime.state

    # A pass

    def run_pass(self, should_stop: Callable[[], bool] = lambda: False) -> PassReport:
        """Poll every task due when the pass starts, once. Returns what happened."""
        report = PassReport()
        started = timezone.now()
        results: queue.SimpleQueue = queue.SimpleQueue()
        cancelled = threading.Event()
        for runtime in self._runtimes.values():
            runtime.halted.clear()
        self._sent_at.clear()
        self._route.clear()
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
        for runtime in self._runtimes.values():
            if runtime.halted.is_set() and not report.state_of(runtime):
                report.note(runtime, "blocked" if runtime.is_blocked() else "paused")
        self._close_retired()
        if report.polled or report.errors or report.provider or report.connections:
            logger.info("poll pass: %s", report)
        return report

    def _close_retired(self) -> None:
        # Their requests have all been answered or given up on by now.
        for runtime in self._retired:
            runtime.close()
        self._retired = []

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
            runtime = self._route[task.pk]
            in_flight[task.pk] = task
            self._pool.submit(
                task.pk, partial(self._fetch, runtime, task.pk, task.task_id), results, cancelled
            )
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
        """Lease up to `limit` more due tasks, leaving out those of every connection that is
        blocked, paused or halted.

        Right after a connection's pause, one task of it only: the probe. Its other tasks
        wait until the probe has been answered without a 429 (the next claim then ends the
        pause for every worker).
        """
        now = timezone.now()
        self._refresh_connections()
        self._read_states()
        held_back: set[int | None] = set()
        tasks: list[VideoTask] = []
        for runtime in list(self._runtimes.values()):
            state = self._held_back(runtime, now)
            if state == "probe":
                held_back.add(runtime.key)
                tasks += self._claim_probe(runtime, now, started, report)
            elif state:
                held_back.add(runtime.key)
                if state != "halted":
                    report.note(runtime, state)
            else:
                report.note(runtime, "")
        claimed = VideoTask.objects.claim_due(
            max(limit - len(tasks), 1), self.lease, due_before=started, exclude_connections=held_back
        )
        report.claimed += len(claimed)
        if unknown := {task.connection_id for task in claimed} - set(self._runtimes):
            self._add_connections(unknown)
        unusable = []
        for task in claimed:
            runtime = self._runtimes.get(task.connection_id)
            if runtime is None or runtime.client is None:
                unusable.append(task)
                continue
            self._route[task.pk] = runtime
            tasks.append(task)
        if unusable:
            # A connection this worker cannot poll (its key unreadable, found just now):
            # handed back unpolled, and claimed around from now on (the claim below blocks
            # it), so a batch of its tasks does not end the pass for everyone else's.
            report.handed_back += self._release(unusable, now)
            if not tasks:
                return self._claim(limit, started, report)
        return tasks

    def _held_back(self, runtime: ConnectionRuntime, now: datetime) -> str:
        """Why `runtime`'s tasks are not to be claimed now ("blocked", "paused", "probing",
        "halted"), "probe" when one of them is to be sent as the probe, or "" to go on."""
        if runtime.client is None:
            if not runtime.is_blocked():
                self._state(runtime).block(UNREADABLE_KEY_REASON, runtime.fingerprint)
                logger.error(
                    "%s: the stored key can no longer be decrypted (VIDEO_ENCRYPTION_KEYS changed?); "
                    "its tasks wait until a manager enters the key again.",
                    runtime.describe(),
                )
            return "blocked"
        if runtime.is_blocked():
            return "blocked"
        if runtime.halted.is_set():
            return "halted"  # reported at the end of the pass, once its answer is folded in
        state = runtime.state
        paused_until = state.paused_until if state is not None else None
        if runtime.probe is not None:
            probe, hold = runtime.probe
            if paused_until == hold and hold > now and probe.lease_token is not None:
                return "probing"  # still on its way
            if state is not None and paused_until == hold and probe.lease_token is None:
                # Its answer was written, and it was no 429: that would have restarted the pause.
                state.end_probe(hold, answered=True)
                logger.info("%s answered the probe; the pause is over", runtime.describe())
            runtime.probe = None
        if state is None:
            return ""
        if state.is_paused(now):
            return "paused"
        if state.probe_due(now):
            return "probe"
        return ""

    def _claim_probe(
        self, runtime: ConnectionRuntime, now: datetime, started: datetime, report: PassReport
    ) -> list[VideoTask]:
        state = self._state(runtime)
        hold = state.claim_probe(now, self.lease)
        if hold is None:
            report.note(runtime, "paused")  # another worker is probing
            return []
        tasks = VideoTask.objects.claim_due(1, self.lease, due_before=started, only_connections={runtime.key})
        if not tasks:
            state.end_probe(hold, answered=False)  # nothing to ask about yet
            return []
        runtime.probe = (tasks[0], hold)
        self._route[tasks[0].pk] = runtime
        report.note(runtime, "probing")
        report.claimed += 1
        return tasks

    def _fetch(self, runtime: ConnectionRuntime, pk: int, task_id: str) -> Any:
        """Runs on a pool thread: one request, unless the task's connection has said stop."""
        if runtime.halted.is_set():
            return NOT_RUN
        limit = self.overdue_after if runtime.key is None else runtime.overdue_after
        self._sent_at[pk] = (time.monotonic(), limit)
        try:
            return runtime.client.retrieve(task_id)
        except (RateLimited, AuthError, QuotaExceeded):
            runtime.halted.set()
            raise

    def _give_up_overdue(self, in_flight: dict[int, VideoTask]) -> int:
        """Hand back, with a backoff, the tasks whose request has run past its deadline, so
        the pass goes on without them; their late answers are dropped. Returns how many."""
        now = time.monotonic()
        overdue = [
            pk for pk, (at, limit) in list(self._sent_at.items()) if now - at > limit and pk in in_flight
        ]
        if not overdue:
            return 0
        tasks = []
        for pk in overdue:
            self._sent_at.pop(pk, None)
            self._route.pop(pk, None)
            tasks.append(task := in_flight.pop(pk))
            logger.warning("task %s (%s): no answer past the request deadline; handed back", pk, task.task_id)
        return self._release(
            tasks, timezone.now() + timedelta(seconds=backoff_delay(self.interval, 1, self.rng))
        )

    def _runtime_of(self, task: VideoTask) -> ConnectionRuntime:
        return self._route.get(task.pk) or self._runtimes.get(task.connection_id) or self._default

    def _hand_back(self, tasks: list[VideoTask]) -> int:
        """Release tasks that were claimed but not polled: due again at once, or spread over
        a short window after their connection's pause ends."""
        by_runtime: dict[int, tuple[ConnectionRuntime, list[VideoTask]]] = {}
        for task in tasks:
            runtime = self._runtime_of(task)
            self._route.pop(task.pk, None)
            by_runtime.setdefault(id(runtime), (runtime, []))[1].append(task)
        now = timezone.now()
        handed = 0
        for runtime, group in by_runtime.values():
            state = runtime.state
            if runtime.probe is not None and state is not None:
                probe, hold = runtime.probe
                if any(task.pk == probe.pk for task in group):
                    state.end_probe(hold, answered=False)  # never answered: the next one goes first
                    runtime.probe = None
            when, spread = now, timedelta(0)
            if state is not None and state.is_paused(now):
                when, spread = state.paused_until, self._release_spread(state.paused_until - now)
            handed += self._release(group, when, spread=spread)
        return handed

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
        runtime = self._runtime_of(task)
        self._route.pop(task.pk, None)
        try:
            if error is None:
                fields, events = self._apply_answer(runtime, task, value, now)
            elif isinstance(error, ProviderError):
                fields, events = self._apply_error(runtime, task, error, now)
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
        self, runtime: ConnectionRuntime, task: VideoTask, answer: TaskAnswer, now: datetime
    ) -> tuple[set[str], list[TaskEvent]]:
        # Providers echo the key (in errors, metadata, anywhere): scrubbed before any of the
        # answer is read, cut to a column, stored or shown (error_message, raw_payload...).
        payload = scrub_json(answer.payload, runtime.client.api_key if runtime.client else "")
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
        delay = poll_delay(
            self.interval,
            pending=task.status == Status.PENDING,
            age=(now - known_since).total_seconds(),
            eta_in=(task.eta_at - now).total_seconds() if task.eta_at is not None else None,
            push_active=runtime.push_active(now),
            rng=self.rng,
        )
        # The provider may ask for patience (openai-poll-after-ms): honoured when longer.
        task.next_poll_at = now + timedelta(seconds=max(delay, answer.poll_after or 0))
        return fields, events

    def _apply_error(
        self, runtime: ConnectionRuntime, task: VideoTask, error: ProviderError, now: datetime
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
            state = self._state(runtime)
            probing = runtime.probe is not None and runtime.probe[0].pk == task.pk
            if probing:
                runtime.probe = None
            before = state.paused_until
            # Capped at MAX_PAUSE, then another probe; the probe's 429 starts it over.
            until = state.pause_until(now + timedelta(seconds=wait_for), now, restart=probing)
            if until != before:
                logger.warning(
                    "%s rate limited us%s; pausing its tasks until %s",
                    runtime.describe(),
                    " again (the probe)" if probing else "",
                    until,
                )
            task.last_error = error.message
            spread = self._release_spread(until - now)
            task.next_poll_at = until + spread * self.rng()
            return {"last_error"}, []
        if isinstance(error, AuthError | QuotaExceeded):
            state = self._state(runtime)
            if not state.is_blocked_for(runtime.fingerprint):
                state.block(error.message, runtime.fingerprint)
                logger.error(
                    "%s: %s Its tasks wait until the key changes or an operator resumes it.",
                    runtime.describe(),
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
