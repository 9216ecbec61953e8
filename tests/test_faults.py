"""The poller under a storm of faults from a real HTTP server on loopback: every task still
ends in the right state, no pass crashes, no task is asked more often than its schedule
allows, and a 429 silences every thread for the wait it asked for."""

from __future__ import annotations

import itertools
import random
import time
from collections import defaultdict

import pytest

from tests.fake_provider import Reply, video
from videos.client import RateLimited, VideoAPIClient
from videos.models import Status, VideoTask
from videos.polling import Poller

INTERVAL = 0.2
TIMEOUT = 0.5
RATE_LIMIT_WAIT = 0.4


def faults(rng: random.Random) -> list[Reply]:
    """One or two faults of each kind a provider throws at us, in random order."""
    kinds = [
        Reply(500, body=b"Internal Server Error"),
        Reply(502, body=b"<html>Bad Gateway</html>", headers={"Content-Type": "text/html"}),
        Reply(503, {"error": {"message": "overloaded"}}),
        Reply(200, {"status": "in_progress"}, delay=TIMEOUT * 2),  # times out
        Reply(200, {"status": "in_progress", "pad": "x" * 300}, trickle=0.01),  # slow body
        Reply(reset=True),
        Reply(200, body=b"<!doctype html><title>Maintenance</title>", headers={"Content-Type": "text/html"}),
        Reply(200, {"status": "in_progress"}, truncate=True),
        Reply(200, body=b'{"status": "in_prog'),
        Reply(200, {"status": "in_progress", "pad": "x" * 20_000}),  # over the size cap
        Reply(404, {"error": {"message": "not yet"}}),  # transient: fewer than three in a row
        Reply(429, {}, headers={"retry-after-ms": str(int(RATE_LIMIT_WAIT * 1000))}),
        Reply(429, {}, headers={"Retry-After": "1"}),
    ]
    return rng.sample(kinds, 3)


class RecordingClient(VideoAPIClient):
    """The real client, noting when each request leaves and when each 429 comes back."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[float] = []
        self.rate_limited: list[tuple[float, float]] = []

    def retrieve(self, task_id: str):
        self.sent.append(time.monotonic())
        try:
            return super().retrieve(task_id)
        except RateLimited as limited:
            self.rate_limited.append((time.monotonic(), limited.retry_after))
            raise


@pytest.mark.django_db
def test_every_task_ends_right_through_a_storm_of_faults(provider, owner):
    rng = random.Random(20261129)
    expected: dict[str, str] = {}
    for i in range(24):
        task_id = f"storm-{i:02d}"
        VideoTask.objects.create(owner=owner, task_id=task_id)
        ends_well = i % 3 != 0
        script = [video(task_id, "queued", 0), *faults(rng), video(task_id, "in_progress", 40)]
        script += faults(rng)
        script.append(video(task_id, "in_progress", 30))  # a step back, which must not show
        if ends_well:
            script.append(video(task_id, "completed", 100, url=f"https://cdn.example/{task_id}.mp4"))
        else:
            script.append(video(task_id, "failed", 40, error={"code": "moderation", "message": "Blocked"}))
        provider.script(task_id, *script)
        expected[task_id] = Status.COMPLETED if ends_well else Status.FAILED

    client = RecordingClient(
        provider.base_url, "sk-storm", timeout=TIMEOUT, connect_timeout=TIMEOUT, max_response_bytes=8192
    )
    poller = Poller(client, interval=INTERVAL, concurrency=4, rng=lambda: 0.5)
    deadline = time.monotonic() + 90
    reports = []
    try:
        while VideoTask.objects.active().exists():
            assert time.monotonic() < deadline, "the storm never ended"
            reports.append(poller.run_pass())
            time.sleep(0.02)
    finally:
        poller.close()

    assert sum(report.errors for report in reports) == 0
    for task in VideoTask.objects.all():
        assert task.status == expected[task.task_id], task.task_id
        if task.status == Status.COMPLETED:
            assert task.progress == 100
            assert task.url == f"https://cdn.example/{task.task_id}.mp4"
        else:
            assert (task.error_code, task.progress) == ("moderation", 40)
        assert task.lease_token is None
        history = [(e.status, e.progress) for e in task.events.all()]
        progress = [p for _, p in history if p is not None]
        assert progress == sorted(progress), (task.task_id, history)

    # No task was asked sooner than its schedule: the steady cadence here is INTERVAL, and
    # every backoff is longer.
    by_task = defaultdict(list)
    for seen in provider.requests:
        by_task[seen.task_id].append(seen.at)
    for task_id, times in by_task.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= INTERVAL * 0.95, (task_id, gaps)

    # Once a 429 has been received, no thread sends anything until the wait has passed.
    # (Requests already sent when the provider answered 429 are not "after" it: we cannot
    # know of a 429 before it arrives.)
    # (A pause ends with a probe that clears paused_until, so the 429s are counted here.)
    limited = [received for received, waited in client.rate_limited]
    assert limited
    for received, waited in client.rate_limited:
        early = [sent for sent in client.sent if received < sent < received + waited]
        assert not early, f"{len(early)} request(s) sent inside a {waited} s rate-limit wait"
