"""The poll cadence: the rules as pure functions, and a scripted job end to end on a fake
clock (the poller's own next_poll_at decides when the next request goes)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.fake_provider import Reply, video
from tests.pages import make_task
from videos import polling
from videos.client import VideoAPIClient
from videos.models import Status, VideoTask
from videos.polling import (
    MAX_ETA_DELAY,
    MAX_PENDING_DELAY,
    MAX_STEADY_DELAY,
    NEAR_ETA_INTERVALS,
    PUSH_SAFETY_NET,
    Poller,
    eta_delay,
    poll_delay,
    steady_delay,
)

KEY = "sk-cadence-test-key"
INTERVAL = 5.0
RNGS = (lambda: 0.0, lambda: 0.5, lambda: 0.999)


def test_far_from_the_eta_it_waits_longer_than_the_interval_but_not_past_it():
    for rng in RNGS:
        for remaining in (30.0, 60.0, 120.0, 240.0):
            wait = eta_delay(INTERVAL, remaining, rng)
            assert wait > INTERVAL
            # The poll near the end still comes: never closer to the ETA than a couple of
            # intervals from a far poll.
            assert wait <= remaining - (NEAR_ETA_INTERVALS - 1) * INTERVAL
    assert eta_delay(INTERVAL, 120, lambda: 0.5) == pytest.approx(40)
    # An ETA an hour away is still looked at once a minute: the pace may change.
    assert eta_delay(INTERVAL, 3600, lambda: 0.999) == MAX_ETA_DELAY


def test_near_the_eta_it_lands_on_it_and_past_it_polls_every_interval():
    assert eta_delay(INTERVAL, 12, lambda: 0.5) == 12
    assert eta_delay(INTERVAL, 3, lambda: 0.5) == INTERVAL
    # A stale ETA (the job is slower than its pace said): every interval, however late.
    for overdue in (0.0, 1.0, 30.0, 3600.0):
        assert eta_delay(INTERVAL, -overdue, lambda: 0.999) == INTERVAL


@pytest.mark.parametrize("remaining", [7.0, 16.0, 44.0, 100.0, 187.5, 240.0, 1800.0])
def test_following_the_eta_cadence_polls_within_an_interval_of_the_eta(remaining):
    t, polls = 0.0, 0
    while t < remaining:
        t += eta_delay(INTERVAL, remaining - t, lambda: 0.999)
        polls += 1
    assert t - remaining <= INTERVAL
    # Fewer polls than every interval, from a couple of intervals out on.
    assert polls <= max(2, math.ceil(remaining / INTERVAL) / 2)


def test_never_more_often_than_the_interval():
    for rng in RNGS:
        for seconds in range(-300, 4000, 7):
            assert eta_delay(INTERVAL, seconds, rng) >= INTERVAL
            assert steady_delay(INTERVAL, max(seconds, 0), rng) >= INTERVAL
            for pending in (False, True):
                assert (
                    poll_delay(INTERVAL, pending=pending, age=max(seconds, 0), eta_in=None, rng=rng)
                    >= INTERVAL
                )


def test_unknown_progress_follows_the_steady_ramp():
    for age in (10.0, 120.0, 7200.0):
        assert poll_delay(INTERVAL, pending=False, age=age, eta_in=None, rng=lambda: 0.5) == steady_delay(
            INTERVAL, age, lambda: 0.5
        )
    assert steady_delay(INTERVAL, 7200, lambda: 0.5) == pytest.approx(MAX_STEADY_DELAY)


def test_a_queued_task_keeps_a_modest_cadence():
    young = poll_delay(INTERVAL, pending=True, age=10, eta_in=None, rng=lambda: 0.5)
    old = poll_delay(INTERVAL, pending=True, age=7200, eta_in=None, rng=lambda: 0.999)
    assert young == pytest.approx(INTERVAL)
    assert INTERVAL < old <= MAX_PENDING_DELAY


def test_a_connection_with_push_is_polled_about_once_a_minute():
    for rng in RNGS:
        for eta_in in (None, -10.0, 3.0, 600.0):
            for pending in (False, True):
                wait = poll_delay(INTERVAL, pending=pending, age=30, eta_in=eta_in, push_active=True, rng=rng)
                assert 0.9 * PUSH_SAFETY_NET <= wait <= PUSH_SAFETY_NET


class Clock:
    """A fake `timezone.now` the test moves by hand: the poller's ages, ETAs and due times
    all read it, so minutes pass in milliseconds."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock)
    return clock


def play_job(provider, owner, clock, poller, task_id, *, queued, duration, poll_after_ms=None):
    """Run a scripted job (queued for `queued` s, then processing `duration` s with a linear
    progress, then completed) against the poller, each request sent when the poller's
    next_poll_at says. Returns (requests, waits between polls, seconds from the finish until
    the poller knew)."""
    started = clock.now
    finishes = started + timedelta(seconds=queued + duration)
    task = make_task(owner, task_id, created_at=started, changed_at=started, next_poll_at=started)
    headers = {"openai-poll-after-ms": str(poll_after_ms)} if poll_after_ms is not None else {}
    waits = []
    while True:
        elapsed = (clock.now - started).total_seconds()
        if clock.now >= finishes:
            reply = video(task_id, "completed", 100)
        elif elapsed < queued:
            reply = video(task_id, "queued", 0)
        else:
            reply = video(task_id, "in_progress", int(100 * (elapsed - queued) / duration))
        provider.script(task_id, Reply(200, reply.json, headers=headers))
        assert poller.run_pass().polled == 1
        task.refresh_from_db()
        if task.status == Status.COMPLETED:
            break
        waits.append((task.next_poll_at - task.last_polled_at).total_seconds())
        assert len(waits) < 200, "the job never finished"
        clock.now = task.next_poll_at
    requests = len(provider.requests_for(task_id))
    return requests, waits, (task.last_polled_at - finishes).total_seconds()


@pytest.fixture
def cadence_poller(provider, db):
    client = VideoAPIClient(provider.base_url, KEY, timeout=2.0, connect_timeout=1.0)
    poller = Poller(client, interval=INTERVAL, concurrency=2, rng=lambda: 0.5)
    yield poller
    poller.close()


def test_a_job_reporting_progress_takes_half_the_requests_of_fixed_polling(
    provider, owner, clock, cadence_poller, monkeypatch
):
    requests, waits, late = play_job(provider, owner, clock, cadence_poller, "paced", queued=6, duration=150)
    assert min(waits) >= INTERVAL
    assert max(waits) > 3 * INTERVAL  # it did wait long while the finish was far
    assert 0 <= late <= INTERVAL

    # The same job polled every interval, as before: the poller's rule replaced.
    monkeypatch.setattr(polling, "poll_delay", lambda interval, **_: interval)
    fixed, fixed_waits, fixed_late = play_job(
        provider, owner, clock, cadence_poller, "fixed", queued=6, duration=150
    )
    assert set(fixed_waits) == {INTERVAL}
    assert 0 <= fixed_late <= INTERVAL
    assert requests <= fixed / 2, (requests, fixed)


def test_a_short_poll_after_never_makes_it_poll_faster_than_the_interval(
    provider, owner, clock, cadence_poller
):
    _, waits, _ = play_job(
        provider, owner, clock, cadence_poller, "hurried", queued=3, duration=60, poll_after_ms=1000
    )
    assert min(waits) >= INTERVAL


def test_a_job_without_progress_follows_the_steady_ramp(provider, owner, clock, cadence_poller):
    started = clock.now
    task = make_task(owner, "blind", created_at=started, changed_at=started, next_poll_at=started)
    provider.script("blind", video("blind", "in_progress", None))
    seen = []
    for _ in range(45):
        cadence_poller.run_pass()
        task.refresh_from_db()
        seen.append((task.next_poll_at - task.last_polled_at).total_seconds())
        clock.now = task.next_poll_at
    assert task.eta_at is None
    assert seen[0] == INTERVAL  # young
    assert seen == sorted(seen)  # then slower...
    assert seen[-1] == pytest.approx(MAX_STEADY_DELAY)  # ...up to the steady ceiling
    assert VideoTask.objects.get(pk=task.pk).poll_count == 45


def test_a_connection_receiving_webhooks_is_polled_as_a_safety_net_only(
    provider, owner, team, clock, cadence_poller, monkeypatch
):
    from teams.models import ProviderConnection

    monkeypatch.setattr(polling, "CONNECTIONS_TTL", 0)  # every claim reads the connections again
    connection = ProviderConnection(workspace=team, name="Gateway", base_url=provider.base_url)
    connection.set_api_key("sk-gateway-0123456789")
    connection.save()
    ours = make_task(owner, "ours", workspace=team, connection=connection, next_poll_at=clock.now)
    deployment = make_task(owner, "deployment", next_poll_at=clock.now)
    for task in (ours, deployment):
        provider.script(task.task_id, video(task.task_id, "in_progress", None))

    def waits() -> dict[str, float]:
        VideoTask.objects.update(next_poll_at=clock.now)
        cadence_poller.run_pass()
        return {
            task.task_id: (task.next_poll_at - task.last_polled_at).total_seconds()
            for task in VideoTask.objects.all()
        }

    assert waits() == {"ours": INTERVAL, "deployment": INTERVAL}
    connection.mark_hook_received(clock.now)  # a verified event arrives: push works
    push = waits()
    assert 0.9 * PUSH_SAFETY_NET <= push["ours"] <= PUSH_SAFETY_NET
    assert push["deployment"] == INTERVAL  # the deployment's own connection has no hooks
    # A day without events: push may have stopped working, so polling takes over again.
    clock.now += polling.PUSH_ACTIVE_FOR + timedelta(seconds=1)
    assert waits()["ours"] < PUSH_SAFETY_NET / 2
