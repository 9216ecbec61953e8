"""Rate-limit pauses against a real HTTP server on loopback: a pause is capped, ends with a
single probe request that every worker waits for, and releases the waiting tasks spread
over a window rather than all in the same second."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from tests.fake_provider import Reply, video
from videos.client import VideoAPIClient
from videos.models import MAX_PAUSE, ProviderState, VideoTask
from videos.polling import RELEASE_SPREAD_MAX, PassReport, Poller

KEY = "sk-pause-test-key"


def make_poller(provider, *, concurrency: int = 4, rng=random.random) -> Poller:
    # Generous deadlines: a request that times out under a loaded machine would be an error,
    # not the 429 or answer a test scripted.
    client = VideoAPIClient(provider.base_url, KEY, timeout=10.0, connect_timeout=5.0)
    return Poller(client, interval=0.5, concurrency=concurrency, rng=rng)


@pytest.fixture
def poller(provider, db):
    poller = make_poller(provider)
    yield poller
    poller.close()


def tasks_answering(owner, provider, count: int, *replies: Reply, prefix: str = "t") -> list[VideoTask]:
    """`count` due tasks, each scripted to answer `replies` (then a healthy answer)."""
    tasks = []
    for i in range(count):
        task_id = f"{prefix}{i:02d}"
        provider.script(task_id, *replies, video(task_id, "in_progress", 20))
        tasks.append(VideoTask.objects.create(owner=owner, task_id=task_id))
    return tasks


def pause_ended(provider) -> ProviderState:
    """The provider's state as a pause leaves it when it has just run out."""
    state, _ = ProviderState.objects.get_or_create(base_url=provider.base_url)
    state.paused_until = timezone.now() - timedelta(seconds=1)
    state.save()
    return state


def paused_until(provider):
    return ProviderState.objects.get(base_url=provider.base_url).paused_until


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "86400"},
        {"retry-after-ms": "86400000"},
        {"Retry-After": email.utils.formatdate(time.time() + 7 * 86400, usegmt=True)},
    ],
)
def test_a_day_long_retry_after_pauses_at_most_fifteen_minutes(provider, poller, owner, headers):
    (task,) = tasks_answering(owner, provider, 1, Reply(429, {}, headers=headers))
    report = poller.run_pass()
    assert report.provider == "paused"
    assert timedelta(minutes=15) == MAX_PAUSE
    until = paused_until(provider)
    assert timezone.now() + MAX_PAUSE - timedelta(seconds=5) < until <= timezone.now() + MAX_PAUSE
    task.refresh_from_db()
    assert until <= task.next_poll_at <= until + timedelta(seconds=RELEASE_SPREAD_MAX)


def test_after_a_pause_one_probe_goes_first_then_the_rest(provider, poller, owner):
    # A real pause, scaled down: 0.3 s asked for by the first answers.
    tasks = tasks_answering(
        owner, provider, 10, Reply(429, {}, headers={"retry-after-ms": "300"}, delay=0.05)
    )
    poller.run_pass()
    limited = len(provider.requests)
    assert 1 <= limited <= 4  # what was in flight when the first 429 came back
    assert paused_until(provider) > timezone.now()
    wait_for(lambda: paused_until(provider) <= timezone.now())
    VideoTask.objects.update(next_poll_at=None)  # everything due the moment the pause ends
    for task in tasks:  # and the provider willing again, answering in 0.2 s
        provider.script(task.task_id, Reply(200, {"status": "in_progress"}, delay=0.2))

    # The probe's answer is noticed within the pass, or at the start of the next one
    # (the command starts it at once after a pass that polled something).
    polled = 0
    for _ in range(2):
        polled += poller.run_pass().polled
    assert paused_until(provider) is None, "the probe was answered: the pause is over"
    assert polled == 10
    probe, *rest = provider.requests[limited:]
    assert len(rest) == 9
    # Nothing else left before the probe's answer came back.
    assert all(seen.at >= probe.at + 0.2 for seen in rest)
    assert not VideoTask.objects.filter(pk__in=[t.pk for t in tasks], lease_token__isnull=False).exists()


def test_a_probe_answered_429_starts_the_pause_over(provider, poller, owner):
    tasks_answering(owner, provider, 10, Reply(429, {}, headers={"Retry-After": "5"}, delay=0.1))
    pause_ended(provider)
    report = poller.run_pass()
    assert len(provider.requests) == 1
    assert report.provider == "probing"
    # Started over from the probe's answer: 5 s from now, not the probe's longer hold.
    assert (
        timezone.now() + timedelta(seconds=3)
        < paused_until(provider)
        <= timezone.now() + timedelta(seconds=5)
    )
    VideoTask.objects.update(next_poll_at=None)
    assert poller.run_pass().provider == "paused"
    assert len(provider.requests) == 1


def test_a_probe_not_sent_is_due_again_at_once(provider, poller, owner):
    """A probe handed back unsent (the worker is stopping) leaves the probe due, not a
    pause that lasts until its hold runs out."""
    tasks_answering(owner, provider, 3)
    pause_ended(provider)
    report = PassReport()
    (probe,) = poller._claim(8, timezone.now(), report)
    assert paused_until(provider) > timezone.now()
    poller._hand_back([probe])
    assert paused_until(provider) <= timezone.now()
    probe.refresh_from_db()
    assert probe.lease_token is None


@pytest.mark.django_db(transaction=True)
def test_several_workers_send_one_probe_between_them(provider, owner):
    tasks_answering(owner, provider, 6, Reply(200, {"status": "in_progress"}, delay=0.5), prefix="w")
    pause_ended(provider)
    first, second = make_poller(provider), make_poller(provider)
    reports: list[PassReport] = []

    def first_worker() -> None:
        try:
            reports.append(first.run_pass())
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_worker)
    try:
        thread.start()
        wait_for(lambda: len(provider.requests) == 1)
        # The other worker, while the probe is out: nothing sent, the provider still paused.
        assert second.run_pass().provider == "paused"
        thread.join(10)
        assert reports[0].claimed == 1
        assert len(provider.requests) == 1
        # The prober learns its probe was answered and ends the pause for everyone.
        first.run_pass()
        assert paused_until(provider) is None
        wait_for(lambda: len(provider.requests) == 6)
    finally:
        thread.join(10)
        first.close()
        second.close()


def test_tasks_released_by_a_pause_fall_due_spread_out(provider, owner, db):
    poller = make_poller(provider, concurrency=8, rng=random.Random(8).random)
    try:
        tasks_answering(owner, provider, 24, Reply(429, {}, headers={"Retry-After": "60"}, delay=0.2))
        report = poller.run_pass()
    finally:
        poller.close()
    assert report.provider == "paused"
    assert report.handed_back >= 1
    until = paused_until(provider)
    held = list(VideoTask.objects.filter(last_error__gt="").values_list("next_poll_at", flat=True))
    handed = list(
        VideoTask.objects.filter(last_error="", next_poll_at__gt=timezone.now()).values_list(
            "next_poll_at", flat=True
        )
    )
    assert len(handed) == report.handed_back
    released = held + handed
    assert len(released) == report.claimed
    # Over a tenth of the 60 s pause after it ends: distinct times, not one second.
    window = timedelta(seconds=6)
    assert all(until - timedelta(seconds=1) <= when <= until + window for when in released)
    assert len(set(released)) == len(released)
    assert max(released) - min(released) > timedelta(seconds=2)
