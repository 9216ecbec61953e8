"""`make run`: the whole product on one machine, for trying it out.

Migrates the SQLite database, seeds the demo login and tasks, then runs the web server and
the poller side by side until Ctrl-C, which stops both.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


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
        children = [subprocess.Popen([sys.executable, MANAGE, "runserver", f"{addr}:{port}", "--noreload"])]
        try:
            # The sandbox provider is served by that web server: let it come up before the
            # poller's first pass, or every demo task starts with a "connection refused".
            self._wait_for_port(addr, port, children[0])
            children.append(subprocess.Popen([sys.executable, MANAGE, "poll_videos"]))
            # When either one dies, the product is broken: stop the other as well.
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.2)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [child for child in children if child.returncode not in (0, -signal.SIGTERM, -signal.SIGINT)]
        if failed and not stopping:
            raise CommandError("The web server or the poller stopped unexpectedly; see above.")

    @staticmethod
    def _wait_for_port(addr: str, port: int, server: subprocess.Popen, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with socket.create_connection((addr, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
