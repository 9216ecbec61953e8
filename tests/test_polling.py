"""The poll engine against a real HTTP server on loopback, with the real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.fake_provider import Reply, video
from tests.pages import make_task as track
from videos.client import VideoAPIClient
from videos.models import ProviderState, Status, TaskEvent, VideoTask
from videos.polling import MAX_BACKOFF, Poller, backoff_delay, steady_delay

KEY = "sk-poller-test-key"


@pytest.fixture
def poller(provider, db):
    client = VideoAPIClient(provider.base_url, KEY, timeout=2.0, connect_timeout=1.0, max_response_bytes=8192)
    poller = Poller(client, interval=5.0, concurrency=4, rng=lambda: 0.5)
    yield poller
    poller.close()


def make_due(*tasks: VideoTask) -> None:
    VideoTask.objects.filter(pk__in=[t.pk for t in tasks]).update(next_poll_at=None)


def poll_until_settled(poller, *tasks: VideoTask, passes: int) -> None:
    for _ in range(passes):
        make_due(*tasks)
        poller.run_pass()


def test_a_task_moves_through_its_life_and_records_a_timeline(provider, poller, owner):
    task = track(owner, "video_life")
    provider.script(
        "video_life",
        video("video_life", "queued", 0),
        video("video_life", "in_progress", 30),
        video("video_life", "in_progress", 80),
        video(
            "video_life",
            "completed",
            100,
            url="https://cdn.example/life.mp4",
            expires_at=2_000_000_000,
            completed_at=1_700_000_100,
            model="sora-2",
            seconds="8",
            size="1280x720",
        ),
    )
    poll_until_settled(poller, task, passes=4)
    task.refresh_from_db()
    assert task.status == Status.COMPLETED
    assert task.progress == 100
    assert task.url == "https://cdn.example/life.mp4"
    assert task.model == "sora-2"
    assert str(task.seconds) == "8.00"
    assert task.size == "1280x720"
    assert task.expires_at.timestamp() == 2_000_000_000
    assert task.completed_at.timestamp() == 1_700_000_100
    assert task.next_poll_at is None
    assert task.poll_count == 4
    kinds = [(e.kind, e.previous_status, e.status) for e in task.events.all()]
    assert kinds == [
        ("status", "pending", "processing"),
        ("progress", "processing", "processing"),
        ("status", "processing", "completed"),
    ]
    times = [e.at for e in task.events.all()]
    assert times == sorted(times)


def test_a_terminal_task_is_never_polled_again_nor_changed(provider, poller, owner):
    task = track(owner, "done")
    provider.script("done", video("done", "failed", 40, error={"code": "moderation", "message": "Blocked"}))
    poller.run_pass()
    # Even if made "due" by hand, a terminal task is not claimed.
    VideoTask.objects.filter(pk=task.pk).update(next_poll_at=timezone.now() - timedelta(hours=1))
    provider.script("done", video("done", "completed", 100, url="https://cdn.example/late.mp4"))
    poller.run_pass()
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.error_code == "moderation"
    assert task.error_message == "Blocked"
    assert task.url == ""
    assert len(provider.requests_for("done")) == 1


def test_progress_never_goes_backwards(provider, poller, owner):
    task = track(owner, "jumpy")
    provider.script("jumpy", video("jumpy", "in_progress", 60), video("jumpy", "in_progress", "20%"))
    poll_until_settled(poller, task, passes=2)
    task.refresh_from_db()
    assert task.progress == 60
    assert task.raw_payload["progress"] == "20%"


def test_an_unknown_status_keeps_the_state_and_stores_the_word(provider, poller, owner):
    task = track(owner, "odd", status=Status.PROCESSING, progress=10)
    provider.script("odd", video("odd", "Moonwalking", 15))
    poller.run_pass()
    task.refresh_from_db()
    assert task.status == Status.PROCESSING
    assert task.raw_status == "Moonwalking"
    assert task.progress == 15
    assert task.next_poll_at is not None


def test_not_found_fails_only_after_three_in_a_row(provider, poller, owner):
    task = track(owner, "ghost")
    provider.script("ghost", Reply(404, {"error": {"message": "nope"}}))
    for expected_count in (1, 2):
        make_due(task)
        poller.run_pass()
        task.refresh_from_db()
        assert task.status == Status.PENDING
        assert task.not_found_count == expected_count
        assert task.next_poll_at > timezone.now()
    make_due(task)
    poller.run_pass()
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.error_code == "task_not_found"
    assert task.events.filter(kind=TaskEvent.Kind.STATUS, status=Status.FAILED).exists()


def test_a_found_answer_resets_the_not_found_count(provider, poller, owner):
    task = track(owner, "late")
    provider.script(
        "late",
        Reply(404, {}),
        Reply(400, {"code": "task_not_exist"}),
        video("late", "queued", 0),
        Reply(404, {}),
        Reply(404, {}),
        video("late", "in_progress", 5),
    )
    poll_until_settled(poller, task, passes=6)
    task.refresh_from_db()
    assert task.status == Status.PROCESSING
    assert task.not_found_count == 0


@pytest.mark.parametrize(
    "reply",
    [
        Reply(500, body=b"oops"),
        Reply(502, body=b"<html>bad gateway</html>"),
        Reply(200, body=b"<html>maintenance</html>", headers={"Content-Type": "text/html"}),
        Reply(200, body=b'{"status": "compl'),
        Reply(200, body=b""),
        Reply(reset=True),
    ],
)
def test_transient_failures_keep_the_state_and_back_off(provider, poller, owner, reply):
    task = track(owner, "flaky", status=Status.PROCESSING, progress=40)
    provider.script("flaky", reply)
    before = timezone.now()
    poller.run_pass()
    task.refresh_from_db()
    assert task.status == Status.PROCESSING
    assert task.progress == 40
    assert task.consecutive_errors == 1
    assert task.last_error
    first_wait = task.next_poll_at - before
    make_due(task)
    poller.run_pass()
    task.refresh_from_db()
    assert task.consecutive_errors == 2
    assert task.next_poll_at - timezone.now() > first_wait - timedelta(seconds=1)
    # And it recovers when the provider does.
    provider.script("flaky", video("flaky", "in_progress", 50))
    make_due(task)
    poller.run_pass()
    task.refresh_from_db()
    assert (task.consecutive_errors, task.last_error, task.progress) == (0, "", 50)


def test_a_slow_provider_times_out_without_stalling_the_others(provider, poller, owner):
    slow = track(owner, "slow", status=Status.PROCESSING)
    quick = [track(owner, f"quick{i}") for i in range(6)]
    provider.script("slow", Reply(200, {"status": "completed"}, delay=3))
    for task in quick:
        provider.script(task.task_id, video(task.task_id, "in_progress", 20))
    report = poller.run_pass()
    assert report.polled == 7
    slow.refresh_from_db()
    assert slow.status == Status.PROCESSING
    assert slow.consecutive_errors == 1
    assert VideoTask.objects.filter(task_id__startswith="quick", status=Status.PROCESSING).count() == 6


def test_one_tasks_exception_does_not_stop_the_pass(provider, poller, owner, monkeypatch):
    from videos import polling

    real_normalize = polling.normalize

    def exploding(payload):
        if payload.get("id") == "bomb":
            raise RuntimeError("a bug")
        return real_normalize(payload)

    monkeypatch.setattr(polling, "normalize", exploding)
    bomb = track(owner, "bomb")
    fine = track(owner, "fine")
    provider.script("bomb", video("bomb", "completed", 100))
    provider.script("fine", video("fine", "completed", 100))
    report = poller.run_pass()
    bomb.refresh_from_db()
    fine.refresh_from_db()
    assert fine.status == Status.COMPLETED
    assert bomb.status == Status.PENDING
    assert bomb.consecutive_errors == 1
    assert "could not be read" in bomb.last_error
    assert report.polled == 2


def test_a_hostile_payload_is_stored_as_plain_data(provider, poller, owner):
    task = track(owner, "evil")
    nasty = "<script>alert(1)</script>\x00 onerror=alert(2)"
    provider.script(
        "evil",
        video(
            "evil",
            "failed",
            10,
            error={"code": "<b>x</b>", "message": nasty},
            url="javascript:alert(1)",
            model="<img src=x onerror=alert(3)>",
            metadata={"note": "bad\x00byte", "nested": {"x": ["\x00"]}},
        ),
    )
    poller.run_pass()
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.url == ""
    assert "<script>" in task.error_message
    assert "\x00" not in task.error_message
    assert task.model.startswith("<img")


def test_the_response_id_does_not_rekey_the_task(provider, poller, owner):
    task = track(owner, "asked-id")
    provider.script("asked-id", video("some-other-id", "in_progress", 5))
    poller.run_pass()
    task.refresh_from_db()
    assert task.task_id == "asked-id"
    assert task.status == Status.PROCESSING


def test_poll_after_header_is_honoured(provider, poller, owner):
    task = track(owner, "patient")
    provider.script(
        "patient",
        Reply(200, {"id": "patient", "status": "queued"}, headers={"openai-poll-after-ms": "60000"}),
    )
    poller.run_pass()
    task.refresh_from_db()
    assert task.next_poll_at - task.last_polled_at >= timedelta(seconds=60)


def test_rate_limit_pauses_the_provider_for_the_wait_it_asks(provider, poller, owner):
    tasks = [track(owner, f"rl{i}") for i in range(3)]
    for task in tasks:
        provider.script(task.task_id, Reply(429, {}, headers={"Retry-After": "30"}))
    poller.run_pass()
    sent = len(provider.requests)
    assert 1 <= sent <= 3
    state = ProviderState.objects.get(base_url=provider.base_url)
    assert state.paused_until - timezone.now() > timedelta(seconds=25)
    make_due(*tasks)
    report = poller.run_pass()
    assert report.provider == "paused"
    assert len(provider.requests) == sent
    for task in tasks:
        task.refresh_from_db()
        assert task.lease_token is None
        assert task.consecutive_errors == 0


def test_a_refused_key_blocks_polling_until_the_key_changes(provider, poller, owner):
    task = track(owner, "locked")
    provider.script("locked", Reply(401, {"error": {"message": "bad key", "code": "invalid_api_key"}}))
    poller.run_pass()
    state = ProviderState.objects.get(base_url=provider.base_url)
    assert state.blocked_reason.startswith("The provider refused the API key")
    assert KEY not in state.blocked_reason
    report = poller.run_pass()
    assert report.provider == "blocked"
    assert len(provider.requests) == 1
    # A new key is a new configuration: polling resumes without an operator.
    provider.script("locked", video("locked", "in_progress", 10))
    client = VideoAPIClient(provider.base_url, KEY + "-rotated", timeout=2.0)
    rotated = Poller(client, interval=5.0, concurrency=2)
    try:
        rotated.run_pass()
    finally:
        rotated.close()
    task.refresh_from_db()
    assert task.status == Status.PROCESSING


def test_an_operator_resume_lifts_the_block(provider, poller, owner):
    track(owner, "blocked")
    provider.script("blocked", Reply(403, {}), video("blocked", "in_progress", 10))
    poller.run_pass()
    ProviderState.objects.get(base_url=provider.base_url).resume()
    poller.run_pass()
    assert VideoTask.objects.get(task_id="blocked").status == Status.PROCESSING


def test_stopped_tasks_are_not_polled(provider, poller, owner):
    task = track(owner, "stopped")
    task.stop_polling()
    provider.script("stopped", video("stopped", "completed", 100))
    report = poller.run_pass()
    assert report.claimed == 0
    assert provider.requests == []
    task.poll_soon()
    poller.run_pass()
    task.refresh_from_db()
    assert task.status == Status.COMPLETED


def test_a_pass_polls_each_due_task_once(provider, db, owner):
    client = VideoAPIClient(provider.base_url, KEY, timeout=2.0)
    # A tiny interval would make tasks due again mid-pass; the pass must not chase them.
    quick = Poller(client, interval=0.1, concurrency=3, rng=lambda: 0.0)
    try:
        tasks = [track(owner, f"once{i}") for i in range(20)]
        for task in tasks:
            provider.script(task.task_id, video(task.task_id, "in_progress", 10))
        report = quick.run_pass()
    finally:
        quick.close()
    assert report.polled == 20
    assert sorted(seen.task_id for seen in provider.requests) == sorted(t.task_id for t in tasks)


def test_an_unchanged_answer_writes_only_the_bookkeeping(provider, poller, owner):
    task = track(owner, "steady")
    provider.script("steady", video("steady", "in_progress", 30))
    poller.run_pass()
    make_due(task)
    with CaptureQueriesContext(connection) as queries:
        poller.run_pass()
    # The result is written with executemany, which Django logs as "N times UPDATE ...".
    (write,) = [
        q["sql"]
        for q in queries.captured_queries
        if 'UPDATE "videos_videotask"' in q["sql"] and "last_polled_at" in q["sql"]
    ]
    set_clause = write.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    assert "last_polled_at" in set_clause
    # Nothing a page shows changed: no visible field is written and changed_at is not
    # bumped, so the dashboard's next refresh stays empty.
    for untouched in ("status", "progress", "error_message", "metadata", "url", "changed_at", "label"):
        assert f'"{untouched}"' not in set_clause


def test_a_write_after_the_lease_was_lost_is_dropped(provider, poller, owner):
    task = track(owner, "fenced")
    (claimed,) = VideoTask.objects.claim_due(10, timedelta(seconds=60))
    # Another worker took the task over after our lease ran out.
    VideoTask.objects.filter(pk=task.pk).update(lease_token="00000000-0000-0000-0000-000000000001")
    claimed.status = Status.COMPLETED
    assert VideoTask.objects.save_poll_results([(claimed, {"status"}, [])]) == set()
    task.refresh_from_db()
    assert task.status == Status.PENDING


def test_claiming_leases_tasks_so_they_are_not_due_until_the_lease_ends(owner):
    track(owner, "leased")
    assert len(VideoTask.objects.claim_due(10, timedelta(seconds=60))) == 1
    assert VideoTask.objects.due().count() == 0
    assert VideoTask.objects.claim_due(10, timedelta(seconds=60)) == []
    assert VideoTask.objects.due(timezone.now() + timedelta(seconds=61)).count() == 1


def test_due_follows_the_contract(owner):
    now = timezone.now()
    due_null = track(owner, "a")
    due_past = track(owner, "b", next_poll_at=now - timedelta(seconds=1))
    track(owner, "c", next_poll_at=now + timedelta(minutes=1))
    track(owner, "d", status=Status.COMPLETED)
    track(owner, "e", status=Status.FAILED, next_poll_at=now - timedelta(days=1))
    assert set(VideoTask.objects.due(now)) == {due_null, due_past}


def test_backoff_grows_and_is_capped():
    waits = [backoff_delay(5, attempt, rng=lambda: 1.0) for attempt in range(1, 12)]
    assert waits == sorted(waits)
    assert waits[0] == 10
    assert max(waits) == MAX_BACKOFF
    assert backoff_delay(5, 3, rng=lambda: 0.0) == 20


def test_steady_cadence_slows_down_for_long_jobs():
    young = steady_delay(5, 10, rng=lambda: 0.5)
    older = steady_delay(5, 180, rng=lambda: 0.5)
    ancient = steady_delay(5, 7200, rng=lambda: 0.5)
    assert young == pytest.approx(5)
    assert young < older < ancient
    assert ancient == pytest.approx(30)


def test_progress_gives_an_eta_and_the_next_poll_lands_near_it(provider, owner, db):
    client = VideoAPIClient(provider.base_url, KEY, timeout=2.0)
    poller = Poller(client, interval=5.0, concurrency=2, rng=lambda: 0.5)
    try:
        started = timezone.now() - timedelta(minutes=10)
        # Ten minutes in and 98 % done: at that pace the job ends in about 12 s, sooner than
        # the steady cadence for a ten-minute-old job (30 s).
        task = track(
            owner,
            "eta",
            status=Status.PROCESSING,
            progress=90,
            processing_started_at=started,
            remote_created_at=started,
        )
        provider.script("eta", video("eta", "in_progress", 98))
        poller.run_pass()
    finally:
        poller.close()
    task.refresh_from_db()
    expected = started + (task.last_polled_at - started) * (100 / 98)
    assert abs((task.eta_at - expected).total_seconds()) < 1
    wait = (task.next_poll_at - task.last_polled_at).total_seconds()
    assert 10 < wait < 14
    assert wait == pytest.approx((task.eta_at - task.last_polled_at).total_seconds(), abs=1)


def test_eta_is_cleared_on_finish_and_unknown_early_on(owner):
    from videos.normalize import normalize

    now = timezone.now()
    task = track(owner, "eta2")
    task.apply_snapshot(normalize({"status": "in_progress", "progress": 2}), now)
    assert task.processing_started_at == now
    assert task.eta_at is None  # 2 % is noise, not a pace
    later = now + timedelta(seconds=60)
    task.apply_snapshot(normalize({"status": "in_progress", "progress": 50}), later)
    assert task.eta_at == now + timedelta(seconds=120)
    task.apply_snapshot(normalize({"status": "completed"}), later + timedelta(seconds=30))
    assert task.eta_at is None


def test_a_rate_limit_stops_every_thread_sending(provider, owner, db):
    """A 429 seen by one thread: queued requests are not sent, in-flight ones may finish."""
    client = VideoAPIClient(provider.base_url, KEY, timeout=2.0)
    poller = Poller(client, interval=5.0, concurrency=2, rng=lambda: 0.5)
    try:
        tasks = [track(owner, f"burst{i}") for i in range(20)]
        for task in tasks:
            provider.script(task.task_id, Reply(429, {}, headers={"retry-after-ms": "60000"}, delay=0.05))
        report = poller.run_pass()
    finally:
        poller.close()
    # Two threads: at most the two requests already in flight when the first 429 landed.
    sent = len(provider.requests)
    assert sent <= 2
    assert report.provider == "paused"
    # What was claimed but not sent is handed back for when the pause ends.
    assert report.handed_back == report.claimed - sent
    state = ProviderState.objects.get(base_url=provider.base_url)
    waiting = VideoTask.objects.filter(next_poll_at__gte=state.paused_until - timedelta(seconds=1))
    assert waiting.count() == report.claimed
    assert not VideoTask.objects.filter(lease_token__isnull=False).exists()


def test_requests_per_second_are_capped(provider, owner, db):
    client = VideoAPIClient(provider.base_url, KEY, timeout=2.0, max_rps=20)
    poller = Poller(client, interval=5.0, concurrency=8, rng=lambda: 0.5)
    try:
        for i in range(30):
            provider.script(f"rps{i}", video(f"rps{i}", "queued", 0))
            track(owner, f"rps{i}")
        poller.run_pass()
    finally:
        poller.close()
    times = sorted(seen.at for seen in provider.requests)
    assert len(times) == 30
    # 30 requests at 20 a second take at least 29/20 s, whatever the thread count. (Judged
    # on the span: arrival gaps jitter on a loaded machine, one request held up on its way
    # closing the next gap, and a window check failed on that.)
    assert times[-1] - times[0] >= 29 / 20 - 0.05
    for i in range(len(times) - 20):
        assert times[i + 20] - times[i] >= 0.8
