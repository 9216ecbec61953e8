"""Run the worker: `poll_videos` loops until SIGTERM/SIGINT; `--once` runs every job once.

The command only parses options, handles signals and, on SQLite, holds the single-worker
lock; the jobs and their supervision live in `videos.worker`, what a pass does in
`videos.polling`.
"""

from __future__ import annotations

import fcntl
import logging
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from videos.polling import Poller
from videos.worker import Worker, pause

logger = logging.getLogger("videos.worker")


class Command(BaseCommand):
    help = (
        "Poll the video provider for every due task, reconcile lost creates and keep copies "
        "until stopped (or each once with --once)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--once",
            action="store_true",
            help="Run every job once (poll the due tasks, reconcile, keep copies, prune), then exit.",
        )

    def handle(self, *args: Any, once: bool = False, **options: Any) -> None:
        if not settings.VIDEO_API_BASE_URL:
            raise CommandError("VIDEO_API_BASE_URL is not set: there is no provider to poll.")
        self.shutdown = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)

        lock = self._single_worker_lock(wait=not once)
        if lock is False:
            return
        worker = Worker(Poller.from_settings(), should_stop=lambda: self.shutdown)
        try:
            if once:
                report = worker.run_once()
                self.stdout.write(str(report))
                if report.failed:
                    # Still exit 0, as the interface contract promises for --once: the pass
                    # ran, and each failure is logged above with its job's name.
                    self.stderr.write(f"job(s) failed: {', '.join(report.failed)}; see the log above.")
            else:
                worker.run()
        finally:
            worker.poller.close()
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
                pause(1.0, lambda: self.shutdown)
        lock.close()
        return False

    def _stop(self, signum: int, frame: Any) -> None:
        logger.info("received %s: finishing what is in flight, then stopping", signal.Signals(signum).name)
        self.shutdown = True
