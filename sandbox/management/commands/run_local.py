"""`make run`: the whole product on one machine, for trying it out.

Migrates the SQLite database, seeds the demo login and tasks, then runs the web server and
the poller side by side until Ctrl-C, which stops both. A poller that dies is said so and
started again (after a growing pause, a few times in a row); the web server stays up
meanwhile, and the boards say that updates are delayed.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


def stop_child(child: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if child is None or child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


class Restarter:
    """Keeps one child process running: when it exits, says so and starts it again after
    `backoff` seconds, doubled for each exit in a row (1, 2, 4, 8, 16 s by default), and
    gives up after `tries` exits in a row. A child that ran for `healthy_after` seconds
    starts the count afresh: one crash a day is restarted every day.

    Driven by `check()` from a loop, so it never blocks the loop that also watches the web
    server and Ctrl-C.
    """

    def __init__(
        self,
        start: Callable[[], subprocess.Popen],
        say: Callable[[str], None],
        *,
        name: str = "poller",
        backoff: float = 1.0,
        tries: int = 5,
        healthy_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.start, self.say, self.name = start, say, name
        self.backoff, self.tries, self.healthy_after, self.clock = backoff, tries, healthy_after, clock
        self.child: subprocess.Popen | None = None
        self.started_at = 0.0
        self.exits_in_a_row = 0
        self.restart_at: float | None = None
        self.gave_up = False

    def launch(self) -> None:
        self.child = self.start()
        self.started_at = self.clock()
        self.restart_at = None

    def check(self) -> None:
        """One look: restart if it is time, notice an exit. Nothing once given up."""
        if self.gave_up:
            return
        now = self.clock()
        if self.child is None:
            if self.restart_at is not None and now >= self.restart_at:
                self.say(f"Starting the {self.name} again.")
                self.launch()
            return
        code = self.child.poll()
        if code is None:
            return
        self.child = None
        if now - self.started_at >= self.healthy_after:
            self.exits_in_a_row = 0
        self.exits_in_a_row += 1
        if self.exits_in_a_row > self.tries:
            self.gave_up = True
            self.say(
                f"The {self.name} stopped (exit code {code}) {self.tries + 1} times in a row; not "
                f"starting it again. The site stays up, but tasks are not updated: see the "
                f"errors above, then restart `make run`."
            )
            return
        pause = self.backoff * 2 ** (self.exits_in_a_row - 1)
        self.restart_at = now + pause
        self.say(
            f"The {self.name} stopped (exit code {code}); starting it again in {pause:g} s "
            f"(try {self.exits_in_a_row} of {self.tries}). The site stays up meanwhile."
        )

    def stop(self) -> None:
        stop_child(self.child)


class Command(BaseCommand):
    help = "Run the web server and the poller together (with demo data). Ctrl-C stops both."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--addr", default="127.0.0.1")

    def handle(self, *args: Any, port: int, addr: str, **options: Any) -> None:
        if not settings.VIDEO_SANDBOX:
            raise CommandError("run_local expects the sandbox provider: run it through `make run`.")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo", port=port, stdout=self.stdout)
        self.stdout.write(f"Admin: http://{addr}:{port}/admin/ (same login). Ctrl-C stops everything.\n")

        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        server = subprocess.Popen([sys.executable, MANAGE, "runserver", f"{addr}:{port}", "--noreload"])
        poller = Restarter(
            lambda: subprocess.Popen([sys.executable, MANAGE, "poll_videos"]),
            lambda text: self.stderr.write(text),
        )
        try:
            # The sandbox provider is served by that web server: let it come up before the
            # poller's first pass, or every demo task starts with a "connection refused".
            self._wait_for_port(addr, port, server)
            poller.launch()
            # Without the web server there is no product: that ends the run. A poller that
            # dies is restarted (see Restarter).
            while not stopping and server.poll() is None:
                poller.check()
                time.sleep(0.2)
        finally:
            poller.stop()
            stop_child(server)
        if not stopping and server.returncode not in (0, -signal.SIGTERM, -signal.SIGINT):
            raise CommandError("The web server stopped unexpectedly; see above.")

    @staticmethod
    def _wait_for_port(addr: str, port: int, server: subprocess.Popen, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with socket.create_connection((addr, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
