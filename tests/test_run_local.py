"""`make run` as a gentle first run (issue 12, item 14): a restart keeps the demo password
(so open browsers stay signed in), and a poller that dies is restarted, not the end of the run."""

from __future__ import annotations

import itertools
import re
import stat
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from sandbox.management.commands.run_local import Restarter

DEMO = re.compile(r"Demo login: username demo, password (\S+)")


@pytest.fixture
def password_file(settings, tmp_path, db) -> Path:
    settings.VIDEO_SANDBOX = True
    settings.DEMO_PASSWORD_FILE = str(tmp_path / ".demo-password")
    return tmp_path / ".demo-password"


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_a_restart_keeps_the_password_and_the_open_session(password_file):
    first = DEMO.search(seed()).group(1)
    assert password_file.read_text().strip() == first
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    browser = Client()
    # Signed in through the login page with the printed password, as a person does.
    signed = browser.post(reverse("login"), {"username": "demo", "password": first})
    assert signed.status_code == 302
    assert browser.get("/").wsgi_request.user.get_username() == "demo"

    again = seed()
    assert DEMO.search(again).group(1) == first
    assert "kept from the last run" in again
    # The session survives: a password set again (even the same one) would have ended it.
    response = browser.get("/")
    assert response.status_code == 200
    assert response.wsgi_request.user.get_username() == "demo"


def test_a_new_database_or_a_changed_password_gets_a_new_one(password_file):
    first = DEMO.search(seed()).group(1)
    demo = get_user_model().objects.get(username="demo")
    demo.set_password("changed-by-hand-1")
    demo.save()
    second = DEMO.search(seed()).group(1)
    assert second != first
    assert password_file.read_text().strip() == second
    assert get_user_model().objects.get(username="demo").check_password(second)

    get_user_model().objects.filter(username="demo").delete()  # as a fresh db.sqlite3
    third = DEMO.search(seed()).group(1)
    assert third != second
    assert get_user_model().objects.get(username="demo").check_password(third)


def test_a_chosen_password_is_kept_too(password_file):
    call_command("seed_demo", "--password", "a-chosen-password", stdout=StringIO())
    assert DEMO.search(seed()).group(1) == "a-chosen-password"


def test_an_existing_file_is_made_private(password_file):
    password_file.write_text("stale\n")
    password_file.chmod(0o644)
    seed()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600


# The poller's restarts, with a fake worker: a real process that exits at once.


def dying_worker(code: int = 3) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])


def run_until(restarter: Restarter, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        restarter.check()
        if restarter.child is not None:
            restarter.child.wait(timeout=timeout)  # the fake exits at once: wait for that, not a clock


def test_a_dying_poller_is_said_and_restarted_with_a_growing_pause_then_given_up():
    said: list[str] = []
    starts: list[float] = []

    def start() -> subprocess.Popen:
        starts.append(time.monotonic())
        return dying_worker()

    restarter = Restarter(start, said.append, backoff=0.02, tries=3)
    restarter.launch()
    run_until(restarter, lambda: restarter.gave_up)
    assert len(starts) == 4  # the first start and three restarts
    assert said[0] == (
        "The poller stopped (exit code 3); starting it again in 0.02 s (try 1 of 3)."
        " The site stays up meanwhile."
    )
    assert "starting it again in 0.04 s (try 2 of 3)" in said[2]
    assert "starting it again in 0.08 s (try 3 of 3)" in said[4]
    assert "Starting the poller again." in said
    assert said[-1].startswith("The poller stopped (exit code 3) 4 times in a row; not starting it again.")
    # The pauses grow: each restart waited at least its backoff after the exit.
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps[2] >= 0.08 and gaps[1] >= 0.04
    restarter.check()  # given up: nothing more
    assert len(starts) == 4


def test_a_poller_that_ran_a_while_starts_the_count_afresh():
    now = [0.0]
    restarter = Restarter(
        dying_worker, lambda text: None, backoff=1.0, tries=2, healthy_after=60.0, clock=lambda: now[0]
    )
    restarter.launch()
    restarter.child.wait()
    now[0] = 10.0
    restarter.check()
    assert (restarter.exits_in_a_row, restarter.restart_at) == (1, 11.0)
    now[0] = 11.0
    restarter.check()  # restarted
    restarter.child.wait()
    now[0] = 200.0  # it ran for minutes before dying: a fresh count, the first pause again
    restarter.check()
    assert (restarter.exits_in_a_row, restarter.restart_at) == (1, 201.0)


def test_stopping_ends_a_running_poller():
    restarter = Restarter(
        lambda: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]), lambda text: None
    )
    restarter.launch()
    child = restarter.child
    restarter.check()
    assert child.poll() is None
    restarter.stop()
    assert child.poll() is not None
