"""Run the poller: `poll_videos` loops until SIGTERM/SIGINT; `--once` does one pass.

The command only drives `videos.polling.Poller`; what a pass does is documented there.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, InterfaceError, close_old_connections, connections
from django.utils import timezone

from videos import keep
from videos.models import WorkerHeartbeat
from videos.polling import PassReport, Poller, backoff_delay
from videos.submissions import reconcile

logger = logging.getLogger("videos.poller")

# How often an idle worker looks for due tasks. Each task's own cadence is set by its
# next_poll_at; this only bounds how late a "poll now" is noticed.
IDLE_CHECK_SECONDS = 1.0
# The heartbeat is written at most this often, not on every idle check.
HEARTBEAT_SECONDS = 5.0


class Heartbeat:
    """Counts passes in memory and writes them to WorkerHeartbeat now and then."""

    def __init__(self) -> None:
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = timezone.now()
        self.last_write = float("-inf")
        self.passes = self.polled = self.errors = 0

    def add(self, report: PassReport) -> None:
        self.passes += 1
        self.polled += report.polled
        self.errors += report.errors
        if time.monotonic() - self.last_write >= HEARTBEAT_SECONDS:
            self.flush()

    def flush(self) -> None:
        WorkerHeartbeat.beat(
            self.name, started_at=self.started_at, passes=self.passes, polled=self.polled, errors=self.errors
        )
        self.passes = self.polled = self.errors = 0
        self.last_write = time.monotonic()


class Command(BaseCommand):
    help = "Poll the video provider for every due task until stopped (or once with --once)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="Do one pass over the due tasks, then exit.")

    def handle(self, *args: Any, once: bool = False, **options: Any) -> None:
        if not settings.VIDEO_API_BASE_URL:
            raise CommandError("VIDEO_API_BASE_URL is not set: there is no provider to poll.")
        self.shutdown = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)

        lock = self._single_worker_lock(wait=not once)
        if lock is False:
            return
        poller = Poller.from_settings()
        try:
            if once:
                report = poller.run_pass(should_stop=lambda: self.shutdown)
                settled = reconcile(poller.client)
                self.stdout.write(
                    f"One pass: {report}." + (f" Reconciled {settled} create(s)." if settled else "")
                )
                return
            self._loop(poller)
        finally:
            poller.close()
            if lock:
                lock.close()

    def _single_worker_lock(self, *, wait: bool) -> Any:
        """On SQLite, hold an exclusive lock file so a second worker waits (or, with
        `wait=False`, gives up) instead of fighting over the database file. Returns the
        open lock file, None when not on SQLite, or False when it did not get the lock."""
        database = connections["default"].settings_dict
        if database["ENGINE"] != "django.db.backends.sqlite3":
            return None
        path = f"{database['NAME']}.poller.lock"
        lock = open(path, "a+")  # noqa: SIM115  (held for the life of the process)
        logged = False
        while not self.shutdown:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if logged:
                    logger.info("the other worker has stopped; this one takes over")
                return lock
            except BlockingIOError:
                if not wait:
                    logger.warning(
                        "another poll_videos is already polling this SQLite database (lock %s); "
                        "nothing to do.",
                        path,
                    )
                    break
                if not logged:
                    logger.warning(
                        "another poll_videos is already polling this SQLite database (lock %s); "
                        "waiting for it to stop. SQLite supports one worker: use PostgreSQL "
                        "(DATABASE_URL) to run several.",
                        path,
                    )
                    logged = True
                self._sleep(1.0)
        lock.close()
        return False

    def _stop(self, signum: int, frame: Any) -> None:
        logger.info("received %s: finishing what is in flight, then stopping", signal.Signals(signum).name)
        self.shutdown = True

    def _loop(self, poller: Poller) -> None:
        logger.info(
            "poller started: %s, every %g s, %d at a time",
            poller.client.base_url,
            settings.VIDEO_POLL_INTERVAL,
            poller.concurrency,
        )
        if settings.VIDEO_KEEP:
            # Copying a finished video can take minutes; it must never hold up polling.
            threading.Thread(target=self._keep_loop, name="keeper", daemon=True).start()
        database_failures = 0
        heartbeat = Heartbeat()
        while not self.shutdown:
            close_old_connections()
            try:
                report = poller.run_pass(should_stop=lambda: self.shutdown)
                # Creates whose answer was lost: look for their videos in the provider's list.
                reconcile(poller.client)
                heartbeat.add(report)
                database_failures = 0
            except (DatabaseError, InterfaceError):
                # The database went away (restart, failover): drop the connections and
                # try again later rather than die and lose the worker.
                database_failures += 1
                logger.exception("database error; reconnecting (attempt %d)", database_failures)
                for connection in connections.all():
                    connection.close_if_unusable_or_obsolete()
                    connection.close()
                self._sleep(backoff_delay(1.0, database_failures))
                continue
            if report.claimed == 0:
                self._sleep(min(IDLE_CHECK_SECONDS, settings.VIDEO_POLL_INTERVAL))
        try:
            heartbeat.flush()
            WorkerHeartbeat.stopped(heartbeat.name)
        except DatabaseError:
            logger.warning("could not record the worker's stop", exc_info=True)
        logger.info("poller stopped")

    def _keep_loop(self) -> None:
        """Copies finished videos into storage, on its own thread and database connection.
        A copy cut short by a stop is retried later (see keep.COPY_LEASE)."""
        try:
            while not self.shutdown:
                close_old_connections()
                try:
                    copied = keep.run(should_stop=lambda: self.shutdown)
                    keep.prune()
                except DatabaseError:
                    logger.exception("keeper: database error; retrying shortly")
                    copied = 0
                if not copied:
                    self._sleep(2.0)
        finally:
            connections.close_all()

    def _sleep(self, seconds: float) -> None:
        # Short slices, so a signal during a long wait still stops the worker promptly.
        deadline = time.monotonic() + seconds
        while not self.shutdown and (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(remaining, 0.25))
