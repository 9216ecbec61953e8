"""`manage.py poll_videos` as operators run it: a real subprocess, a real provider on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from tests.fake_provider import Reply, video
from videos.models import KeepState, Status, VideoTask

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database this test run uses, for a subprocess to share it."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def command_env(provider, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEO_")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=database_url(),
        VIDEO_API_BASE_URL=provider.base_url,
        VIDEO_API_KEY="sk-command-test",
        VIDEO_POLL_INTERVAL="1",
        VIDEO_API_TIMEOUT="30",
    )
    env.update(extra)
    return env


def run_command(provider, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "poll_videos", *args],
        cwd=ROOT,
        env=command_env(provider, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def start_worker(provider, *, merge_stderr: bool = False, **env: str) -> subprocess.Popen:
    """`manage.py poll_videos` running, as a platform starts the worker process."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "poll_videos"],
        cwd=ROOT,
        env=command_env(provider, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
    )


@pytest.mark.django_db(transaction=True)
def test_once_polls_the_due_tasks_and_exits_0(provider, owner):
    done = VideoTask.objects.create(owner=owner, task_id="cmd-done")
    broken = VideoTask.objects.create(owner=owner, task_id="cmd-broken", status=Status.PROCESSING)
    later = VideoTask.objects.create(
        owner=owner, task_id="cmd-later", next_poll_at=timezone.now() + timezone.timedelta(hours=1)
    )
    provider.script("cmd-done", video("cmd-done", "succeeded", 100, video_url="https://cdn.example/x.mp4"))
    provider.script("cmd-broken", Reply(200, body=b"<html>oops</html>"))
    result = run_command(provider, "--once", VIDEO_KEEP="0")  # polling only: copies are tested below
    assert result.returncode == 0, result.stderr
    assert "One pass: claimed 2, polled 2" in result.stdout
    done.refresh_from_db()
    broken.refresh_from_db()
    later.refresh_from_db()
    assert done.status == Status.COMPLETED
    assert done.url == "https://cdn.example/x.mp4"
    assert broken.status == Status.PROCESSING
    assert broken.consecutive_errors == 1
    assert later.last_polled_at is None
    assert {seen.task_id for seen in provider.requests} == {"cmd-done", "cmd-broken"}
    assert "sk-command-test" not in result.stdout + result.stderr


@pytest.mark.django_db(transaction=True)
def test_once_also_reconciles_and_keeps_copies(provider, owner):
    VideoTask.objects.create(owner=owner, task_id="cmd-keep", status=Status.PROCESSING)
    provider.script("cmd-keep", video("cmd-keep", "completed", 100))
    clip = b"\x00\x00\x00\x18ftypmp42" + b"kept-by-once" * 100
    provider.script(
        "GET /videos/cmd-keep/content",
        Reply(200, body=clip, headers={"Content-Type": "video/mp4"}),
        Reply(404, {"error": {"message": "no thumbnail"}}),
    )
    result = run_command(provider, "--once")
    assert result.returncode == 0, result.stderr
    assert "One pass: claimed 1, polled 1" in result.stdout
    assert "Kept 1 copy." in result.stdout
    task = VideoTask.objects.get(task_id="cmd-keep")
    assert (task.status, task.keep_state, task.kept_bytes) == (Status.COMPLETED, KeepState.KEPT, len(clip))


@pytest.mark.django_db(transaction=True)
def test_without_a_provider_it_says_so(provider):
    result = run_command(provider, "--once", VIDEO_API_BASE_URL="")
    assert result.returncode != 0
    assert "VIDEO_API_BASE_URL is not set" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.django_db(transaction=True)
def test_a_signal_stops_the_loop_promptly_and_hands_back_in_flight_work(provider, owner, signum):
    stuck = VideoTask.objects.create(owner=owner, task_id="stuck", status=Status.PROCESSING)
    # The provider holds this request far longer than a platform's grace period.
    provider.script("stuck", Reply(200, {"status": "completed"}, delay=20))
    process = start_worker(provider)
    try:
        deadline = time.monotonic() + 30
        while not provider.requests_for("stuck"):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the worker never asked the provider"
            time.sleep(0.05)
        sent = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert elapsed < 5
    assert "poller stopped" in out + err
    stuck.refresh_from_db()
    assert stuck.status == Status.PROCESSING
    assert stuck.lease_token is None
    assert stuck.next_poll_at <= timezone.now()


@pytest.mark.django_db(transaction=True)
def test_the_loop_keeps_polling_until_the_task_finishes(provider, owner):
    task = VideoTask.objects.create(owner=owner, task_id="loop")
    provider.script(
        "loop", video("loop", "queued", 0), video("loop", "in_progress", 50), video("loop", "completed", 100)
    )
    process = start_worker(provider, VIDEO_POLL_INTERVAL="0.2")
    try:
        deadline = time.monotonic() + 30
        while task.status != Status.COMPLETED and time.monotonic() < deadline:
            time.sleep(0.2)
            task.refresh_from_db()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert task.status == Status.COMPLETED
    assert process.returncode == 0
    time.sleep(0.5)
    # Terminal: no request after the completing one.
    assert len(provider.requests_for("loop")) == 3


@pytest.fixture
def keep_signal_handlers():
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.django_db(transaction=True)  # the loop closes and reopens connections
def test_the_loop_survives_a_lost_database_and_records_its_heartbeat(
    settings, monkeypatch, keep_signal_handlers
):
    from django.core.management import call_command
    from django.db import OperationalError

    from videos import worker
    from videos.management.commands import poll_videos
    from videos.models import WorkerHeartbeat
    from videos.polling import PassReport

    settings.VIDEO_API_BASE_URL = "http://127.0.0.1:9/v1"
    calls = []

    class FlakyPoller:
        client = type("C", (), {"base_url": "http://127.0.0.1:9/v1"})()
        concurrency = 1

        def run_pass(self, should_stop):
            calls.append(time.monotonic())
            if len(calls) == 1:
                raise OperationalError("server closed the connection unexpectedly")
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGTERM)  # as the platform would
            return PassReport(claimed=1, polled=1)

        def close(self):
            calls.append("closed")

    monkeypatch.setattr(poll_videos.Poller, "from_settings", classmethod(lambda cls: FlakyPoller()))
    monkeypatch.setattr(worker, "backoff_delay", lambda base, attempt: 0.05)
    # The first pass's OperationalError comes with a database that does not answer.
    answers = iter([False])
    monkeypatch.setattr(worker.Runner, "database_answers", lambda runner: next(answers, True))
    settings.VIDEO_KEEP = False  # this test is about the poll loop; the keeper has tests of its own
    call_command("poll_videos")
    assert len(calls) == 4  # failed, recovered, signalled, then closed
    assert calls[-1] == "closed"
    beat = WorkerHeartbeat.objects.get()
    assert beat.tasks_polled == 2
    assert beat.stopped_at is not None


@pytest.mark.django_db(transaction=True)
def test_on_sqlite_a_second_worker_waits_for_the_first(provider, owner):
    if connection.vendor != "sqlite":
        pytest.skip("the single-worker lock is for SQLite; PostgreSQL shares work between workers")
    VideoTask.objects.create(owner=owner, task_id="shared")
    provider.script("shared", video("shared", "in_progress", 10))

    def start() -> subprocess.Popen:
        return start_worker(provider, merge_stderr=True)

    first = start()
    try:
        deadline = time.monotonic() + 30
        while not provider.requests_for("shared"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = start()
        try:
            time.sleep(2)
            once = run_command(provider, "--once")
            assert once.returncode == 0
            assert "already polling this SQLite database" in once.stdout + once.stderr
            first.send_signal(signal.SIGTERM)
            first.communicate(timeout=10)
            # The waiting worker takes over once the first has gone.
            time.sleep(2)
            second.send_signal(signal.SIGTERM)
            out, _ = second.communicate(timeout=10)
        finally:
            if second.poll() is None:
                second.kill()
    finally:
        if first.poll() is None:
            first.kill()
    assert "waiting for it to stop" in out
    assert "use PostgreSQL" in out
    assert "this one takes over" in out


@pytest.mark.django_db
def test_poll_stats_reports_requests_per_finished_task(owner):
    from io import StringIO

    from django.core.management import call_command

    for i, spent in enumerate([3, 5, 7, 40]):
        VideoTask.objects.create(owner=owner, task_id=f"done{i}", status=Status.COMPLETED, poll_count=spent)
    VideoTask.objects.create(owner=owner, task_id="running", status=Status.PROCESSING, poll_count=99)
    out = StringIO()
    call_command("poll_stats", stdout=out)
    text = out.getvalue()
    assert "Finished tasks: 4 (completed 4, failed 0)" in text
    assert "Requests per finished task: mean 13.8, median 7, p95 40, max 40" in text
    assert "Active tasks: 1 (due now: 1)" in text
