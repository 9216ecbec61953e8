"""The site as deployed, for tests that need a real server: gunicorn (gthread) in a
subprocess on a free loopback port, sharing the test run's database."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

from tests.test_poll_command import ROOT, database_url

# What every such server needs besides the test's own settings: plain HTTP on loopback.
BASE_ENV = {
    "PATH": "/usr/bin:/bin",
    "DJANGO_SETTINGS_MODULE": "tests.settings",
    "ALLOWED_HOSTS": "127.0.0.1",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
    "SECURE_SSL_REDIRECT": "0",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    ends = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < ends, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def gunicorn(env: dict[str, str], *, health_path: str = "/healthz") -> Iterator[str]:
    """Serve the project with BASE_ENV, the test database and `env`; yield the origin
    (http://127.0.0.1:port) once `health_path` answers 200, and stop the server after."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "dashboard.wsgi:application"),
            *("--bind", f"127.0.0.1:{port}", "--worker-class", "gthread", "--workers", "1"),
            *("--threads", "4", "--timeout", "120", "--log-level", "warning"),
        ],
        cwd=ROOT,
        env={**BASE_ENV, "DATABASE_URL": database_url(), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    origin = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            return requests.get(f"{origin}{health_path}", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(up, what=f"gunicorn to answer {health_path}")
        yield origin
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr:
            process.stderr.close()
