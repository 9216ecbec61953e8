"""The worker behind `poll_videos`: its background jobs, each run under a supervisor.

A job does one round of work and returns whether there was any: `heartbeat` (tells the
dashboard and /healthz that the worker is alive), `poll` (one pass over the due tasks, each
on its own provider connection), `reconcile` (creates whose answer was lost, on the
connection each was sent to), `deliver` (notifications, see notifications.delivery) and
`prune_notifications`, `keep` (copies of finished videos) and `prune` (copies past their
retention). The heartbeat also notices silent workers (notifications.events.check_workers).
A job that did work runs again at once; one that did none waits its idle time. Tests call
the jobs directly (`Worker.poll()`, ...).

Supervision: whatever a job raises is logged with the job's name; the job waits (a backoff
that doubles with each failure in a row, capped) and runs again, and the other jobs go on
meanwhile. A job that keeps failing (FAILING_AFTER failures in a row, or failing for longer
than `Timing.failing_for`) is recorded on the worker's heartbeat, which /healthz and the
dashboard's banner show.

A lost database is not a job's failure. An OperationalError or InterfaceError after which
the database does not answer a `SELECT 1` (a restart, a failover, a network cut) stops
every job of the thread, which drops its connections and tries again with a backoff of its
own. Anything else is the failing job's alone: errors about the data (DataError,
IntegrityError, ProgrammingError), and an OperationalError while the database answers (a
statement timeout, SQLite's "too many SQL variables").

The keeper's jobs (keep, prune) run on a thread of their own: a copy can take minutes and
must never hold up polling. So do the notifier's (deliver, prune_notifications): a receiver
may take 10 s to answer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
)
from django.utils import timezone

from notifications import delivery as notification_delivery
from notifications import events as notification_events
from videos import keep as copies
from videos import submissions
from videos.models import WorkerHeartbeat
from videos.polling import PassReport, Poller, backoff_delay
from videos.scrub import scrub

logger = logging.getLogger("videos.worker")

# Connection-level errors: the database is unreachable, not the job at fault.
OUTAGE_ERRORS = (OperationalError, InterfaceError)
# A job this many failures in a row is reported as failing (or sooner: Timing.failing_for).
FAILING_AFTER = 3
# How often an idle worker looks for due tasks. Each task's own cadence is set by its
# next_poll_at; this only bounds how late a "poll now" is noticed.
IDLE_CHECK_SECONDS = 1.0
# Waits are cut into slices this long, so a stop during a long wait is noticed promptly.
SLEEP_SLICE = 0.25


@dataclass(frozen=True)
class Timing:
    """How long the worker waits, in seconds. Tests scale these down."""

    idle: float = IDLE_CHECK_SECONDS  # poll and reconcile, after a round with nothing to do
    keep_idle: float = 2.0
    prune_idle: float = 60.0  # retention is counted in days
    heartbeat: float = 5.0  # written this often, not on every pass
    backoff: float = 1.0  # a failing job's first wait, doubled with each failure in a row...
    max_backoff: float = 60.0  # ...up to this
    outage_backoff: float = 1.0  # the base of polling.backoff_delay after a lost database
    failing_for: float = 60.0  # a job failing this long is reported, however few its failures
    keeper_join: float = 1.0  # on stop, how long to wait for the keeper's thread to finish

    @classmethod
    def from_settings(cls) -> Timing:
        return cls(idle=min(IDLE_CHECK_SECONDS, settings.VIDEO_POLL_INTERVAL))


@dataclass(frozen=True)
class Job:
    name: str
    label: str  # what it does, for the banner
    run: Callable[[], bool]
    idle: float


class Supervisor:
    """Runs one job round after round, whatever it raises, and counts its failures.

    The keeper's thread writes this state and the main thread reads it for the heartbeat;
    each field is read once per report, and a torn read is corrected by the next beat.
    """

    def __init__(self, job: Job, timing: Timing) -> None:
        self.job = job
        self.timing = timing
        self.failures = 0  # in a row
        self.failing_since: datetime | None = None
        self.last_error = ""
        self.next_run = 0.0  # time.monotonic()

    def run(self) -> bool:
        """One round of the job; returns whether it did work. Raises only OUTAGE_ERRORS."""
        try:
            worked = self.job.run()
        except OUTAGE_ERRORS:
            raise
        except Exception as error:
            self.failed(error)
            return False
        if self.failures:
            logger.info("job %s: working again after %d failure(s) in a row", self.job.name, self.failures)
        self.failures = 0
        self.failing_since = None
        self.next_run = time.monotonic() + (0 if worked else self.job.idle)
        return worked

    def failed(self, error: Exception) -> None:
        self.failures += 1
        self.failing_since = self.failing_since or timezone.now()
        self.last_error = describe(error)
        delay = min(self.timing.max_backoff, self.timing.backoff * 2 ** min(self.failures - 1, 30))
        self.next_run = time.monotonic() + delay
        logger.error(
            "job %s failed (%d in a row); running it again in %.1f s",
            self.job.name,
            self.failures,
            delay,
            exc_info=error,
        )

    def failing(self, now: datetime) -> dict | None:
        """What the heartbeat records about this job when it keeps failing, else None."""
        failures, since, error = self.failures, self.failing_since, self.last_error
        if not failures or since is None:
            return None
        if failures < FAILING_AFTER and (now - since).total_seconds() < self.timing.failing_for:
            return None
        return {
            "job": self.job.name,
            "label": self.job.label,
            "failures": failures,
            "since": since.isoformat(),
            "error": error,
        }


def describe(error: Exception) -> str:
    """A short line about an error for the heartbeat, with the provider key taken out."""
    # Scrubbed before it is cut, so no piece of the key survives at the cut.
    return scrub(f"{type(error).__name__}: {error}")[:300]


def pause(seconds: float, should_stop: Callable[[], bool]) -> None:
    """Sleep in short slices, so a stop during a long wait is noticed promptly."""
    deadline = time.monotonic() + seconds
    while not should_stop() and (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(remaining, SLEEP_SLICE))


class Runner:
    """Runs supervised jobs in turn on one thread, each when it is due, until stopped."""

    def __init__(
        self, supervisors: list[Supervisor], timing: Timing, should_stop: Callable[[], bool]
    ) -> None:
        self.supervisors = supervisors
        self.timing = timing
        self.should_stop = should_stop

    def run(self) -> None:
        outages = 0
        names = ", ".join(supervisor.job.name for supervisor in self.supervisors)
        while not self.should_stop():
            current = None
            try:
                close_old_connections()
                for supervisor in self.supervisors:
                    if self.should_stop():
                        break
                    if supervisor.next_run <= time.monotonic():
                        current = supervisor
                        supervisor.run()
                        outages = 0
            except OUTAGE_ERRORS as error:
                if current is not None and self.database_answers():
                    # Not the connection: a statement timeout, SQLite's "too many SQL
                    # variables" or "no such table". That job's failure; the others go on.
                    current.failed(error)
                    continue
                # The database went away (restart, failover): drop the connections and try
                # again later rather than die and lose the worker.
                outages += 1
                logger.exception("database unreachable (%s): reconnecting, attempt %d", names, outages)
                self.reconnect()
                pause(backoff_delay(self.timing.outage_backoff, outages), self.should_stop)
                continue
            except Exception:
                # Not from a job (those are supervised): the loop's own housekeeping. Never die.
                logger.exception("worker loop (%s): unexpected error", names)
                pause(self.timing.max_backoff, self.should_stop)
                continue
            pause(min(s.next_run for s in self.supervisors) - time.monotonic(), self.should_stop)

    def database_answers(self) -> bool:
        """Whether this thread's connection still answers, after an OperationalError."""
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError:
            return False
        return True

    def reconnect(self) -> None:
        """Drop this thread's database connections; Django opens new ones on the next query."""
        for each in connections.all(initialized_only=True):
            with contextlib.suppress(DatabaseError):
                each.close()


class Heartbeat:
    """Counts passes in memory; `flush` writes them to WorkerHeartbeat."""

    def __init__(self) -> None:
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = timezone.now()
        self.passes = self.polled = self.errors = 0

    def add(self, report: PassReport) -> None:
        self.passes += 1
        self.polled += report.polled
        self.errors += report.errors

    def flush(self, failing_jobs: dict) -> None:
        WorkerHeartbeat.beat(
            self.name,
            started_at=self.started_at,
            passes=self.passes,
            polled=self.polled,
            errors=self.errors,
            failing_jobs=failing_jobs,
        )
        self.passes = self.polled = self.errors = 0


@dataclass
class OnceReport:
    report: PassReport
    counts: Counter = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"One pass: {self.report}."
        if self.counts["reconciled"]:
            text += f" Reconciled {self.counts['reconciled']} create(s)."
        if kept := self.counts["kept"]:
            text += f" Kept {kept} {'copy' if kept == 1 else 'copies'}."
        if pruned := self.counts["pruned"]:
            text += f" Removed {pruned} old {'copy' if pruned == 1 else 'copies'}."
        if self.failed:
            text += f" Failed: {', '.join(self.failed)} (see the log)."
        return text


class Worker:
    """Every background job of one poll_videos process, supervised.

    `run()` loops until `should_stop()`: heartbeat, poll and reconcile on the calling
    thread, keep and prune (when VIDEO_KEEP is on) on the keeper's thread, deliver and
    prune_notifications on the notifier's thread. `run_once()` runs poll, reconcile, keep,
    prune and deliver once each, in that order, on the calling thread.
    """

    def __init__(
        self,
        poller: Poller,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        keep_copies: bool | None = None,
        timing: Timing | None = None,
    ) -> None:
        self.poller = poller
        self.should_stop = should_stop
        self.timing = timing = timing or Timing.from_settings()
        self.heartbeat = Heartbeat()
        self.last_pass = PassReport()
        self.counts: Counter = Counter()
        self._beaten = False
        main = [
            Job("heartbeat", "Recording that the worker is alive", self.beat, timing.heartbeat),
            Job("poll", "Polling the provider", self.poll, timing.idle),
            Job("reconcile", "Finding the videos of lost creates", self.reconcile, timing.idle),
        ]
        notifier = [
            Job("deliver", "Sending notifications", self.deliver, timing.idle),
            Job("prune_notifications", "Removing old notification events", self.prune_notifications, 3600.0),
        ]
        keeper = [
            Job("keep", "Copying finished videos into storage", self.keep, timing.keep_idle),
            Job("prune", "Removing copies past their retention", self.prune, timing.prune_idle),
        ]
        if not (settings.VIDEO_KEEP if keep_copies is None else keep_copies):
            keeper = []
        self.main = [Supervisor(job, timing) for job in main]
        self.keeper = [Supervisor(job, timing) for job in keeper]
        self.notifier = [Supervisor(job, timing) for job in notifier]

    # The jobs: one round each, returning whether there was work.

    def beat(self) -> bool:
        first = not self._beaten
        if first:
            # Before our own first beat: the gap since any worker last beat is still visible.
            notification_events.check_workers(self.heartbeat.name, self.heartbeat.started_at, first=True)
        self.heartbeat.flush(self.failing_jobs())
        if not first:
            notification_events.check_workers(self.heartbeat.name, self.heartbeat.started_at, first=False)
        self._beaten = True
        return False

    def poll(self) -> bool:
        report = self.poller.run_pass(should_stop=self.should_stop)
        self.heartbeat.add(report)
        self.last_pass = report
        return report.claimed > 0

    def reconcile(self) -> bool:
        settled = submissions.reconcile(self.poller.client, client_for=self.poller.client_for)
        self.counts["reconciled"] += settled
        return settled > 0

    def deliver(self) -> bool:
        return notification_delivery.run()

    def prune_notifications(self) -> bool:
        notification_delivery.prune()
        return False

    def keep(self) -> bool:
        kept = copies.run(should_stop=self.should_stop)
        self.counts["kept"] += kept
        return kept > 0

    def prune(self) -> bool:
        pruned = copies.prune()
        self.counts["pruned"] += pruned
        return pruned > 0

    # Running them.

    def failing_jobs(self) -> dict:
        now = timezone.now()
        return {s.job.name: info for s in self.main + self.keeper + self.notifier if (info := s.failing(now))}

    def run(self) -> None:
        logger.info(
            "poller started: %s and every workspace connection, every %g s, %d at a time",
            self.poller.client.base_url or "(no deployment provider)",
            settings.VIDEO_POLL_INTERVAL,
            self.poller.concurrency,
        )
        keeper = None
        if self.keeper:
            keeper = threading.Thread(target=self._run_keeper, name="keeper", daemon=True)
            keeper.start()
        notifier = threading.Thread(
            target=self._run_side, args=(self.notifier,), name="notifier", daemon=True
        )
        notifier.start()
        self._runner(self.main).run()
        if keeper is not None:
            # A copy in flight is not waited for: its lease hands it back (keep.reclaim_stale).
            keeper.join(self.timing.keeper_join)
        # Nor a notification in flight: its claim lapses and it is sent again (at least once).
        notifier.join(self.timing.keeper_join)
        try:
            self.heartbeat.flush(self.failing_jobs())
            WorkerHeartbeat.mark_stopped(self.heartbeat.name)
        except DatabaseError:
            logger.warning("could not record the worker's stop", exc_info=True)
        logger.info("poller stopped")

    def run_once(self) -> OnceReport:
        once = OnceReport(self.last_pass, self.counts)
        for supervisor in self.main + self.keeper + self.notifier:
            if supervisor.job.name in ("heartbeat", "prune_notifications"):
                continue  # a one-off run is not a worker the dashboard should count on
            supervisor.run()
            if supervisor.failures:
                once.failed.append(supervisor.job.name)
        once.report = self.last_pass
        return once

    def _runner(self, supervisors: list[Supervisor]) -> Runner:
        return Runner(supervisors, self.timing, self.should_stop)

    def _run_keeper(self) -> None:
        self._run_side(self.keeper)

    def _run_side(self, supervisors: list[Supervisor]) -> None:
        # Its own database connection, closed when the thread ends.
        try:
            self._runner(supervisors).run()
        finally:
            connections.close_all()
