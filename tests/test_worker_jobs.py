"""The worker's jobs under supervision: a job that raises is logged, backed off and run
again while the others go on; one that keeps failing shows on /healthz (with its token) and
on the dashboard's banner; a lost database is told apart from a bad value. Real threads, a
real provider on loopback, real storage (a local directory, an S3 API server)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import DataError, OperationalError, ProgrammingError, connection, connections
from django.utils import timezone

from tests import test_keep_s3
from tests.fake_provider import Reply, video
from videos import keep
from videos.client import VideoAPIClient
from videos.models import KeepState, Status, VideoTask, WorkerHeartbeat
from videos.polling import Poller
from videos.worker import Job, Runner, Supervisor, Timing, Worker

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"supervised" * 1000
# Every wait scaled down; failing_for stays long so "keeps failing" means failures in a row.
FAST = Timing(
    idle=0.02,
    keep_idle=0.02,
    prune_idle=0.05,
    heartbeat=0.05,
    backoff=0.02,
    max_backoff=0.1,
    outage_backoff=0.01,
    failing_for=60,
    keeper_join=5,
)
TOKEN = "health-token-for-tests"
s3_endpoint = test_keep_s3.s3_endpoint  # the fixture: an S3 API server on loopback


def wait_until(condition, message: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.02)


@pytest.fixture
def configured(settings, provider, tmp_path):
    settings.VIDEO_API_BASE_URL = provider.base_url
    settings.VIDEO_API_KEY = "sk-jobs"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.HEALTHZ_TOKEN = TOKEN
    return provider


def serve_file(provider, task_id: str) -> None:
    reply = Reply(200, body=VIDEO, headers={"Content-Type": "video/mp4"})
    provider.script(f"GET /files/{task_id}.mp4", reply)


def finished(provider, owner, task_id: str) -> VideoTask:
    """A completed task waiting for its copy, whose direct link serves the video."""
    serve_file(provider, task_id)
    return VideoTask.objects.create(
        owner=owner,
        task_id=task_id,
        status=Status.COMPLETED,
        progress=100,
        url=f"{provider.base_url}/files/{task_id}.mp4",
        keep_state=KeepState.WAITING,
        next_keep_at=timezone.now(),
    )


@pytest.fixture
def start_worker(configured):
    """Runs a Worker (keeper thread and all) on a thread of its own; stops it afterwards."""
    running = []

    def start(timing: Timing = FAST) -> Worker:
        stop = threading.Event()
        poller = Poller(VideoAPIClient(configured.base_url, "sk-jobs"), interval=0.2, concurrency=2)
        worker = Worker(poller, should_stop=stop.is_set, keep_copies=True, timing=timing)

        def run() -> None:
            try:
                worker.run()
            finally:
                connections.close_all()

        thread = threading.Thread(target=run, name="test-worker", daemon=True)
        thread.start()
        running.append((stop, thread, worker))
        return worker

    yield start
    for stop, thread, worker in running:
        stop.set()
        thread.join(10)
        worker.poller.close()
        assert not thread.is_alive(), "the worker did not stop"


def keep_states(*tasks: VideoTask) -> set[str]:
    states = VideoTask.objects.filter(pk__in=[task.pk for task in tasks]).values_list("keep_state", flat=True)
    return set(states)


def job(worker: Worker, name: str) -> Supervisor:
    return next(s for s in worker.main + worker.keeper if s.job.name == name)


def failing_on_heartbeat() -> dict:
    beat = WorkerHeartbeat.objects.filter(stopped_at__isnull=True).first()
    return beat.failing_jobs if beat else {}


@pytest.mark.django_db(transaction=True)
def test_a_keeper_that_hits_a_file_in_the_way_is_restarted_surfaced_and_recovers(
    configured, owner, start_worker, client, settings
):
    first, second = finished(configured, owner, "in_the_way_1"), finished(configured, owner, "in_the_way_2")
    # A file where the copies' folder should be: every save raises an OSError.
    settings.MEDIA_ROOT.mkdir()
    (settings.MEDIA_ROOT / "kept").write_text("not a folder")
    running = VideoTask.objects.create(owner=owner, task_id="still_polled", status=Status.PROCESSING)
    configured.script("still_polled", video("still_polled", "completed", 100))

    worker = start_worker()
    keeper = job(worker, "keep")
    wait_until(lambda: "keep" in failing_on_heartbeat(), "the failing keeper never reached the heartbeat")
    assert keeper.failures >= 3
    # Each round tried every due copy (the first failure did not stop the others) and handed
    # them back: nothing is left "copying" with nobody copying it.
    assert len(configured.requests_for("GET /files/in_the_way_2.mp4")) >= 2
    assert keep_states(first, second) <= {KeepState.WAITING, KeepState.COPYING}  # COPYING: in flight
    # Polling went on meanwhile, on its own thread.
    wait_until(lambda: VideoTask.objects.get(pk=running.pk).is_terminal, "polling was held up by the keeper")

    # Surfaced: /healthz with the token details it; without, it says only "ok".
    detail = client.get("/healthz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    failing = detail["worker"]["failing_jobs"]
    assert [entry["job"] for entry in failing] == ["keep"]
    assert failing[0]["failures"] >= 3
    assert failing[0]["error"].startswith(("FileExistsError", "NotADirectoryError"))
    assert failing[0]["label"] == "Copying finished videos into storage"
    public = client.get("/healthz")
    assert (public.status_code, public.content) == (200, b"ok\n")
    client.force_login(owner)
    banner = client.get("/status/").content.decode()
    assert "Part of the worker keeps failing" in banner
    assert "Copying finished videos into storage (<code>keep</code>)" in banner
    assert "failures in a row" in banner
    assert "not a folder" not in banner and "Errno" not in banner  # the error stays in the log

    # The operator moves the file away: the restarted job copies both, and the alarm clears.
    (settings.MEDIA_ROOT / "kept").unlink()
    wait_until(lambda: keep_states(first, second) == {KeepState.KEPT}, "the keeper never recovered")
    wait_until(lambda: failing_on_heartbeat() == {}, "the heartbeat still reports the keeper as failing")
    assert keeper.failures == 0
    assert "keeps failing" not in client.get("/status/").content.decode()
    assert VideoTask.objects.get(pk=first.pk).keep_attempts == 0  # our fault, not the file's


@pytest.mark.django_db(transaction=True)
def test_an_s3_error_fails_the_round_and_the_next_round_copies(
    configured,
    owner,
    settings,
    s3_endpoint,
    monkeypatch,
):
    import boto3
    from botocore.exceptions import ClientError

    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    name = f"missing-{time.monotonic_ns()}"
    test_keep_s3.store_in_bucket(settings, s3_endpoint, name)  # not created yet: S3 answers NoSuchBucket
    task = finished(configured, owner, "s3_later")
    worker = Worker(
        Poller(VideoAPIClient(configured.base_url, "sk-jobs")), keep_copies=True, timing=Timing(backoff=0.5)
    )
    keeper = job(worker, "keep")
    try:
        assert keeper.run() is False
        assert keeper.failures == 1
        assert keeper.last_error.startswith("NoSuchBucket: ")
        assert keeper.next_run - time.monotonic() == pytest.approx(0.5, abs=0.2)  # backing off
        task.refresh_from_db()
        assert (task.keep_state, task.keep_attempts) == (KeepState.WAITING, 0)
        with pytest.raises(ClientError):
            worker.keep()  # the job itself raises: supervision is the Supervisor's

        boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        ).create_bucket(Bucket=name)
        later = finished(configured, owner, "s3_later_2")
        assert keeper.run() is True
        assert keeper.failures == 0
        assert keep_states(task, later) == {KeepState.KEPT}
    finally:
        worker.poller.close()


@pytest.mark.django_db(transaction=True)
def test_a_copy_stuck_copying_past_its_lease_goes_back_to_waiting_and_is_copied(configured, owner, caplog):
    now = timezone.now()
    stuck = finished(configured, owner, "stuck_copying")
    lease_ended = now - timedelta(seconds=1)
    VideoTask.objects.filter(pk=stuck.pk).update(keep_state=KeepState.COPYING, next_keep_at=lease_ended)
    # Another worker's copy, still within its lease: not touched.
    busy = finished(configured, owner, "busy_copying")
    VideoTask.objects.filter(pk=busy.pk).update(
        keep_state=KeepState.COPYING, next_keep_at=now + keep.COPY_LEASE - timedelta(minutes=1)
    )

    assert keep.reclaim_stale() == 1
    stuck.refresh_from_db()
    assert stuck.keep_state == KeepState.WAITING
    assert stuck.changed_at >= now  # open pages see it
    assert "stuck_copying" in caplog.text and "back to waiting" in caplog.text

    worker = Worker(Poller(VideoAPIClient(configured.base_url, "sk-jobs")), keep_copies=True, timing=FAST)
    try:
        assert worker.keep() is True
    finally:
        worker.poller.close()
    stuck.refresh_from_db()
    busy.refresh_from_db()
    assert stuck.keep_state == KeepState.KEPT
    assert busy.keep_state == KeepState.COPYING
    assert not configured.requests_for("GET /files/busy_copying.mp4")


@pytest.mark.django_db(transaction=True)
def test_run_once_runs_every_job_and_keeps_copies(configured, owner):
    VideoTask.objects.create(owner=owner, task_id="once_done", status=Status.PROCESSING)
    configured.script(
        "once_done", video("once_done", "completed", 100, url=f"{configured.base_url}/files/once_done.mp4")
    )
    serve_file(configured, "once_done")
    worker = Worker(Poller(VideoAPIClient(configured.base_url, "sk-jobs")), keep_copies=True, timing=FAST)
    try:
        once = worker.run_once()
    finally:
        worker.poller.close()
    task = VideoTask.objects.get(task_id="once_done")
    assert task.keep_state == KeepState.KEPT
    assert task.kept_bytes == len(VIDEO)
    assert str(once).startswith("One pass: claimed 1, polled 1")
    assert "Kept 1 copy" in str(once)
    assert once.failed == []
    assert not WorkerHeartbeat.objects.exists()  # a one-off run is not a worker to count on


class WatchedRunner(Runner):
    """A Runner that records its reconnects; `answers=False` plays a database that is gone
    (the real probe is used otherwise)."""

    def __init__(self, *args, answers: bool | None = None) -> None:
        super().__init__(*args)
        self.answers = answers
        self.reconnects = 0

    def database_answers(self) -> bool:
        return super().database_answers() if self.answers is None else self.answers

    def reconnect(self) -> None:
        self.reconnects += 1
        super().reconnect()


def run_jobs(supervisors: list[Supervisor], until, timing: Timing = FAST, answers: bool | None = None) -> int:
    """Runs the jobs on a thread until `until()`; returns how many times it reconnected."""
    stop = threading.Event()
    runner = WatchedRunner(supervisors, timing, stop.is_set, answers=answers)

    def run() -> None:
        try:
            runner.run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_until(until, "the jobs did not get there")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    return runner.reconnects


def counting_job(name: str, calls: list[float]) -> Job:
    def run() -> bool:
        calls.append(time.monotonic())
        return False

    return Job(name, name, run, FAST.idle)


def operational_error_while_the_database_answers() -> None:
    """A real OperationalError that says nothing about the connection."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT * FROM no_such_table")
        try:
            cursor.execute("SET statement_timeout = 1")
            cursor.execute("SELECT pg_sleep(1)")  # canceled after 1 ms
        finally:
            cursor.execute("SET statement_timeout = 0")


@pytest.mark.parametrize(
    "error", [DataError, ProgrammingError, "a real IntegrityError", "a real OperationalError"]
)
@pytest.mark.django_db(transaction=True)
def test_a_data_error_is_that_jobs_failure_not_a_database_outage(error):
    polls: list[float] = []
    attempts: list[float] = []

    def reconcile() -> bool:
        attempts.append(time.monotonic())
        if error == "a real IntegrityError":
            WorkerHeartbeat.objects.create(name="taken")  # the name is unique
        elif error == "a real OperationalError":
            operational_error_while_the_database_answers()
        else:
            raise error("value too long for type character varying(200)")
        return True

    WorkerHeartbeat.objects.create(name="taken")
    timing = Timing(idle=0.01, backoff=30, max_backoff=30)  # the failing job waits long
    poll = Supervisor(counting_job("poll", polls), timing)
    failing = Supervisor(Job("reconcile", "reconcile", reconcile, 0.01), timing)
    reconnects = run_jobs([failing, poll], until=lambda: len(polls) >= 30, timing=timing)

    assert reconnects == 0  # no reconnect, no outage backoff
    assert len(attempts) == 1  # backing off on its own...
    assert failing.failures == 1
    kind = error.__name__ if isinstance(error, type) else error.removeprefix("a real ")
    assert failing.last_error.startswith(f"{kind}: ")
    # ...while the poll pass ran on its usual cadence from the start.
    assert polls[0] - attempts[0] < 1
    assert poll.failures == 0


def test_a_lost_connection_is_an_outage_for_the_whole_thread():
    polls: list[float] = []
    reconcile_calls: list[float] = []

    def reconcile() -> bool:
        reconcile_calls.append(time.monotonic())
        if len(reconcile_calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return False

    failing = Supervisor(Job("reconcile", "reconcile", reconcile, FAST.idle), FAST)
    poll = Supervisor(counting_job("poll", polls), FAST)
    reconnects = run_jobs([failing, poll], until=lambda: len(reconcile_calls) >= 3, answers=False)
    assert reconnects == 1
    assert failing.failures == 0  # the database's failure, not the job's
    assert polls and polls[0] > reconcile_calls[0]  # the poll waited for the reconnect


@pytest.mark.django_db(transaction=True)
def test_a_connection_killed_by_the_server_is_reopened():
    if connection.vendor != "postgresql":
        pytest.skip("a server that ends a connection is PostgreSQL's; SQLite has none")
    seen: list[int] = []

    def poll() -> bool:
        with connection.cursor() as cursor:
            if not seen:
                seen.append(0)
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # as a failover would
            cursor.execute("SELECT count(*) FROM videos_videotask")
            seen.append(cursor.fetchone()[0])
        return False

    supervisor = Supervisor(Job("poll", "poll", poll, FAST.idle), FAST)
    reconnects = run_jobs([supervisor], until=lambda: len(seen) >= 3)
    assert reconnects == 1
    assert supervisor.failures == 0


def test_a_job_backs_off_exponentially_up_to_a_cap_and_is_reported_after_three_failures():
    def broken() -> bool:
        raise OSError("disk full")

    supervisor = Supervisor(Job("keep", "Copying", broken, 1.0), Timing(backoff=1, max_backoff=4))
    waits = []
    reports = []
    for _ in range(5):
        assert supervisor.run() is False
        waits.append(round(supervisor.next_run - time.monotonic()))
        reports.append(supervisor.failing(timezone.now()))
    assert waits == [1, 2, 4, 4, 4]
    assert reports[:2] == [None, None]
    assert reports[2]["failures"] == 3
    assert reports[4]["error"] == "OSError: disk full"
    # Failing for long enough counts too, however few the failures.
    slow = Supervisor(Job("prune", "Removing", broken, 1.0), Timing(failing_for=60))
    slow.run()
    assert slow.failing(timezone.now()) is None
    assert slow.failing(timezone.now() + timedelta(seconds=61))["failures"] == 1
