"""Several poll_videos processes at once, and one killed mid-pass: real subprocesses, a real
provider on loopback, the real database (several workers need PostgreSQL)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.db import connection

from tests.fake_provider import Reply, video
from tests.test_poll_command import ROOT, command_env
from videos.models import Status, VideoTask, WorkerHeartbeat


def start_worker(provider, log_dir, **env: str) -> subprocess.Popen:
    log = log_dir / f"worker-{time.monotonic_ns()}.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "poll_videos"],
            cwd=ROOT,
            env=command_env(provider, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker.log = log  # type: ignore[attr-defined]
    return worker


def stop(*workers: subprocess.Popen) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


def wait_until(condition, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_four_workers_share_two_thousand_tasks_polling_each_exactly_once(provider, owner, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("several workers share tasks through PostgreSQL row locks; SQLite allows one")
    ids = [f"multi-{i:04d}" for i in range(2000)]
    VideoTask.objects.bulk_create([VideoTask(owner=owner, task_id=task_id) for task_id in ids])
    for task_id in ids:
        provider.script(task_id, video(task_id, "completed", 100, url=f"https://cdn.example/{task_id}.mp4"))
    workers = [start_worker(provider, tmp_path, VIDEO_POLL_CONCURRENCY="16") for _ in range(4)]
    try:
        wait_until(
            lambda: VideoTask.objects.filter(status=Status.COMPLETED).count() == 2000,
            90,
            "the workers did not finish the 2,000 tasks",
        )
    finally:
        stop(*workers)
    assert all(worker.returncode == 0 for worker in workers), [w.log.read_text()[-2000:] for w in workers]
    per_task = Counter(seen.task_id for seen in provider.requests)
    assert set(per_task) == set(ids)
    assert set(per_task.values()) == {1}, per_task.most_common(3)
    # The work was shared, not done by one worker while the others idled.
    beats = list(WorkerHeartbeat.objects.all())
    assert len(beats) == 4
    assert sum(beat.tasks_polled for beat in beats) == 2000
    assert all(beat.tasks_polled > 0 for beat in beats), [beat.tasks_polled for beat in beats]
    assert not VideoTask.objects.filter(lease_token__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_loses_nothing(provider, owner, tmp_path):
    ids = [f"kill-{i:03d}" for i in range(60)]
    VideoTask.objects.bulk_create([VideoTask(owner=owner, task_id=task_id) for task_id in ids])
    for task_id in ids:
        # Slow answers, so the victim dies with requests in flight and tasks leased.
        provider.script(
            task_id, Reply(200, {"id": task_id, "status": "completed", "progress": 100}, delay=1.0)
        )
    lease = {"VIDEO_POLL_LEASE": "4", "VIDEO_POLL_CONCURRENCY": "8"}
    victim = start_worker(provider, tmp_path, **lease)
    try:
        wait_until(lambda: len(provider.requests) >= 8, 30, "the first worker never started polling")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        leased = VideoTask.objects.filter(lease_token__isnull=False).count()
        assert leased > 0  # it died holding leases: the case under test
        survivor = start_worker(provider, tmp_path, **lease)
        try:
            wait_until(
                lambda: VideoTask.objects.filter(status=Status.COMPLETED).count() == 60,
                60,
                "tasks leased by the killed worker were never polled again",
            )
        finally:
            stop(survivor)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert not VideoTask.objects.filter(lease_token__isnull=False).exists()
    assert set(VideoTask.objects.values_list("status", flat=True)) == {Status.COMPLETED}
