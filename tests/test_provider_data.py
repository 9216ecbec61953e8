"""What a provider sends reaches the database only after it is checked: the IDs in its list
and in its create answers are validated like pasted ones, junk entries are dropped without
stalling anything, and every value fits its column. Against a real HTTP server on loopback,
on whichever database the run uses (SQLite by default, PostgreSQL with DATABASE_URL)."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from tests.fake_provider import Reply, video
from videos import submissions
from videos.client import VideoAPIClient
from videos.models import Status, Submission, VideoTask
from videos.normalize import Snapshot
from videos.polling import Poller
from videos.submissions import LIST_PAGE_SIZE, VideoRequest, reconcile, submit

PROMPT = "Storm over the bay"


@pytest.fixture
def client(provider):
    client = VideoAPIClient(provider.base_url, "sk-data", timeout=2.0, connect_timeout=1.0)
    yield client
    client.close()


def lost_create(owner, prompt: str = PROMPT) -> Submission:
    """A create whose answer never came, as submit leaves it: due for a look at the list."""
    sent = timezone.now() - timedelta(seconds=30)
    return Submission.objects.create(
        owner=owner,
        prompt=prompt,
        model="veo-3",
        state=Submission.State.UNKNOWN,
        created_at=sent,
        answered_at=sent,
        next_reconcile_at=sent,
    )


def entry(task_id, seconds_after: float, submission: Submission, **extra) -> dict:
    """A listed video that fits `submission`, made `seconds_after` it was sent."""
    made = submission.created_at + timedelta(seconds=seconds_after)
    return {
        "id": task_id,
        "object": "video",
        "status": "queued",
        "model": "veo-3",
        "prompt": submission.prompt,
        "created_at": int(made.timestamp()),
        **extra,
    }


def list_page(*data, **fields) -> Reply:
    """A 200 answer to GET /videos: `data` as the page, and whatever else it should say."""
    return Reply(200, {"object": "list", "data": list(data), **fields})


def list_requests(provider) -> list:
    return [seen for seen in provider.requests if seen.task_id == "GET /videos"]


def test_a_poisoned_list_still_reconciles_the_genuine_video(provider, client, owner, caplog):
    submission = lost_create(owner)
    hostile_id = "v" * 300
    # Each poisoned entry fits the request better (made sooner after it was sent) than the
    # genuine one, so none can be passed over by luck: each must be refused for what it is.
    poisoned = [
        entry(hostile_id, 1, submission),
        entry("..", 1, submission),
        entry("video_\x00nul", 1, submission),
        entry("   ", 1, submission),
        entry(12.5, 1, submission),
        entry(True, 1, submission),
        entry(["video_in_a_list"], 1, submission),
        entry({"$ne": ""}, 1, submission),
        entry(None, 1, submission),
        "video_not_an_object",
        42,
        None,
        ["video_x"],
        # Unreadable creation times are no match, and no crash.
        entry("video_when_1", 0, submission, created_at=1e308),
        entry("video_when_2", 0, submission, created_at="9999-12-31T23:59:59-23:59"),
        entry("video_when_3", 0, submission, created_at=10**30),
        entry("video_when_4", 0, submission, created_at={"seconds": 1}),
        # "../" inside an ID is legal (it is percent-encoded into one path segment, see
        # test_client), so this one is kept, and passed over because its prompt differs.
        entry("../../admin", 1, submission, prompt="Something else"),
    ]
    genuine = entry("video_genuine", 5, submission)
    twin = entry("video_genuine", 2, submission, model="x" * 1000)  # a repeat: the first wins
    provider.script(
        "GET /videos",
        list_page(*poisoned, genuine, twin, has_more=False),
    )
    with caplog.at_level(logging.WARNING, logger="videos.submissions"):
        assert reconcile(client) == 1

    submission.refresh_from_db()
    assert submission.state == Submission.State.CREATED
    assert submission.task.task_id == "video_genuine"
    assert submission.task.model == "veo-3"
    assert list(VideoTask.objects.values_list("task_id", flat=True)) == ["video_genuine"]
    # One warning for the whole list, short, never the hostile value in full.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unusable entries" in warnings[0]
    assert hostile_id not in warnings[0]
    assert len(warnings[0]) < 300


def test_list_cursors_of_the_wrong_type_are_not_followed(provider, client, owner):
    submission = lost_create(owner)
    far = entry("video_unrelated", 1, submission, prompt="Not it")
    provider.script(
        "GET /videos",
        # "false" is a true value in Python, and the cursor is no ID: read one page only.
        list_page(far, has_more="false", last_id={"$gt": ""}),
        list_page(has_more=False),
    )
    reconcile(client)
    assert len(list_requests(provider)) == 1


def test_a_cursor_that_does_not_move_ends_the_read(provider, client, owner):
    submission = lost_create(owner)
    same_page = list_page(
        entry("video_looping", 1, submission, prompt="Not it"), has_more=True, last_id="video_looping"
    )
    provider.script("GET /videos", same_page)
    reconcile(client)
    cursors = [parse_qs(urlsplit(seen.raw_path).query).get("after") for seen in list_requests(provider)]
    # The first page, then the page after "video_looping", which says the same again.
    assert cursors == [None, ["video_looping"]]


def test_a_bad_last_id_falls_back_to_the_last_usable_entry(provider, client, owner):
    submission = lost_create(owner)
    first = list_page(entry("video_page1", 1, submission, prompt="Not it"), has_more=True, last_id="y" * 300)
    second = list_page(entry("video_found", 2, submission), has_more=False)
    provider.script("GET /videos", first, second)
    assert reconcile(client) == 1
    cursors = [parse_qs(urlsplit(seen.raw_path).query).get("after") for seen in list_requests(provider)]
    assert cursors == [None, ["video_page1"]]
    submission.refresh_from_db()
    assert submission.task.task_id == "video_found"


def test_a_huge_page_is_read_only_as_far_as_was_asked(provider, client, owner, monkeypatch):
    submission = lost_create(owner)
    read = []
    real_normalize = submissions.normalize
    monkeypatch.setattr(submissions, "normalize", lambda payload: read.append(1) or real_normalize(payload))
    flood = [{"id": f"video_{i}", "prompt": "Not it"} for i in range(20_000)]
    provider.script("GET /videos", list_page(*flood, has_more=False))
    reconcile(client)
    assert len(read) <= LIST_PAGE_SIZE
    submission.refresh_from_db()
    assert submission.state == Submission.State.UNKNOWN
    assert submission.reconcile_attempts == 1


# A JSON true or false once became the task "True"; other junk (lists, objects, 300
# characters, "..") was already refused before the list was checked the same way.
@pytest.mark.parametrize("answer_id", [True, False])
def test_a_create_answer_with_an_unusable_id_is_looked_for_not_tracked(provider, client, owner, answer_id):
    provider.script("POST /videos", Reply(200, {"id": answer_id, "status": "queued"}))
    submission = submit(owner, VideoRequest(prompt=PROMPT, model="veo-3"), client)
    assert submission.state == Submission.State.UNKNOWN
    assert not VideoTask.objects.exists()


def test_a_remix_answer_with_an_unusable_id_is_looked_for_not_tracked(provider, client, owner):
    source = VideoTask.objects.create(owner=owner, task_id="video_src", status=Status.COMPLETED)
    provider.script("POST /videos/video_src/remix", Reply(200, {"id": True, "status": "queued"}))
    submission = submit(owner, VideoRequest(prompt="At night"), client, remix_of=source)
    assert submission.state == Submission.State.UNKNOWN
    assert list(VideoTask.objects.values_list("task_id", flat=True)) == ["video_src"]


def test_huge_values_in_a_status_answer_are_stored_clipped(provider, client, owner, db):
    # normalize() already cut these before this issue; with apply_snapshot now cutting to
    # the columns (next test), this pins the whole path from the socket to the row.
    task = VideoTask.objects.create(owner=owner, task_id="video_huge")
    provider.script(
        "video_huge",
        video(
            "video_huge",
            "s" * 1000,
            10,
            model="m" * 1000,
            size="9" * 1000,
            error={"code": "c" * 1000, "message": "e" * 5000},
        ),
    )
    poller = Poller(client, interval=5.0, concurrency=2, rng=lambda: 0.5)
    report = poller.run_pass()
    assert (report.polled, report.errors) == (1, 0)
    task.refresh_from_db()
    assert task.raw_status == "s" * 64
    assert task.model == "m" * 100
    assert task.size == "9" * 32
    assert task.error_code == "c" * 100
    assert task.last_polled_at is not None


def test_every_snapshot_value_is_cut_to_its_column_in_one_place(owner):
    """Whatever produced the snapshot, applying it yields values that fit: the columns'
    max_length is the one limit, not a copy of it kept by each caller."""
    task = VideoTask.objects.create(owner=owner, task_id="video_fit")
    snapshot = Snapshot(
        status=Status.PROCESSING,
        raw_status="s" * 1000,
        progress=20,
        model="m" * 1000,
        seconds=Decimal(8),
        size="9" * 1000,
        url=None,
        error_code="c" * 1000,
        error_message="warning",
        remote_created_at=None,
        completed_at=None,
        expires_at=None,
        metadata=None,
        remote_id="video_fit",
    )
    fields, _events = task.apply_snapshot(snapshot, timezone.now())
    task.save(update_fields=sorted(fields))
    task.refresh_from_db()
    for field in ("raw_status", "model", "size", "error_code"):
        limit = VideoTask._meta.get_field(field).max_length
        assert len(getattr(task, field)) == limit, field
