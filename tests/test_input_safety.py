"""What people type reaches the database only in a form it can hold, and a race between
identical submissions is an ordinary answer: through Django's test client, on whichever
database the run uses (SQLite by default, PostgreSQL with DATABASE_URL).

PostgreSQL text cannot hold a NUL character at all; SQLite stores it, so there the same
tests pin that the NUL never reaches a row either."""

from __future__ import annotations

import json
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client

from tests.fake_provider import video
from videos.models import Status, Submission, TaskEvent, VideoTask, VideoTaskQuerySet

HX = {"HX-Request": "true"}
# NUL above all, and the rest of the C0 controls, DEL and a lone surrogate's neighbours.
CONTROL = "\x00\x01\x08\x0b\x1b\x7f"


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    VideoTask.objects.create(owner=owner, task_id="video_nul_1", label="Waves", model="veo-3")
    return client


@pytest.fixture
def admin_client(client, db):
    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-1")
    client.force_login(admin)
    return client


@pytest.fixture
def configured(settings, provider):
    settings.VIDEO_API_BASE_URL = provider.base_url
    settings.VIDEO_API_KEY = "sk-input"
    settings.VIDEO_MODELS = []
    settings.VIDEO_SIZES = []
    settings.VIDEO_SECONDS = []
    return provider


# Every filter of the dashboard and its live refresh, and the search box.
FILTERS = ["q", "status", "before", "after"]
LIVE_ONLY = ["token", "ids"]


@pytest.mark.parametrize("value", ["\x00", "Wav\x00es", "Waves" + CONTROL, "1700000000000000_1\x00"])
@pytest.mark.parametrize("name", FILTERS)
def test_control_characters_in_a_dashboard_filter_are_harmless(signed_in, name, value):
    response = signed_in.get("/", {name: value})
    assert response.status_code == 200
    assert "\x00" not in response.content.decode()


@pytest.mark.parametrize("value", ["\x00", "Wav\x00es", "1700000000000000_1\x00", "1,\x002"])
@pytest.mark.parametrize("name", FILTERS + LIVE_ONLY)
def test_control_characters_in_the_live_refresh_are_harmless(signed_in, name, value):
    response = signed_in.get("/tasks/live/", {name: value}, headers=HX)
    assert response.status_code in (200, 204, 286)


def test_the_search_still_finds_what_the_control_characters_hid(signed_in):
    html = signed_in.get("/", {"q": "Wav\x00es"}).content.decode()
    assert "video_nul_1" in html


@pytest.mark.parametrize(
    "value",
    [
        "1_²",  # isdigit() says yes, int() says no
        "²_1",
        "1_" + "9" * 30,
        "-1_-1",
        "1_99999999999999999999",
        "1_9999999999999999999",  # past a bigint
    ],
)
@pytest.mark.parametrize("name", ["before", "after"])
def test_malformed_cursors_are_ignored(signed_in, name, value):
    assert signed_in.get("/", {name: value}).status_code == 200


def test_control_characters_in_a_tracked_line_are_that_lines_problem(signed_in, owner):
    response = signed_in.post(
        "/tasks/track/", {"task_ids": "video_ok  A label\x00 with\x1b junk\nvideo_\x00bad\n"}, headers=HX
    )
    assert response.status_code == 200
    task = VideoTask.objects.get(owner=owner, task_id="video_ok")
    assert task.label == "A label with junk"
    assert not VideoTask.objects.filter(task_id__contains="bad").exists()
    assert "Line 2" in response.content.decode()


@pytest.mark.parametrize("field", ["prompt", "model", "seconds", "size"])
def test_control_characters_in_the_create_form_are_dropped_before_anything_is_stored(
    configured, signed_in, owner, field
):
    configured.script("POST /videos", video("video_made", "queued", 0))
    clean = {"prompt": "Waves at dusk", "model": "veo-3", "seconds": "8", "size": "1280x720"}
    data = {**clean, field: clean[field][:1] + CONTROL + clean[field][1:]}
    response = signed_in.post("/videos/new/", data, headers=HX)
    assert response.status_code == 200
    submission = Submission.objects.get()
    assert {name: getattr(submission, name) for name in clean} == clean
    assert submission.task.label == clean["prompt"]
    (sent,) = [seen for seen in configured.requests if seen.task_id == "POST /videos"]
    assert json.loads(sent.body) == clean


def test_a_prompt_keeps_its_line_breaks(configured, signed_in):
    configured.script("POST /videos", video("video_lines", "queued", 0))
    prompt = "First shot: waves.\r\nSecond shot:\tthe lighthouse."
    signed_in.post("/videos/new/", {"prompt": prompt + "\x00", "model": "veo-3"}, headers=HX)
    assert Submission.objects.get().prompt == prompt


def test_control_characters_in_a_remix_prompt_never_reach_a_row(configured, signed_in, owner):
    source = VideoTask.objects.create(owner=owner, task_id="video_src", status=Status.COMPLETED)
    configured.script("POST /videos/video_src/remix", video("video_remixed", "queued", 0))
    response = signed_in.post(f"/tasks/{source.pk}/remix/", {"prompt": "At\x00 night\x1b"})
    assert response.status_code == 302
    assert Submission.objects.get().prompt == "At night"


@pytest.mark.parametrize(
    "params",
    [
        {"q": "video\x00"},
        {"owner__id__exact": "\x00"},
        {"model": "veo\x00"},
        {"status__exact": "\x00"},
        {"keep_state__exact": "\x00"},
        {"\x00model": "veo-3"},
    ],
)
def test_control_characters_in_the_admin_search_and_filters_are_harmless(admin_client, owner, params):
    VideoTask.objects.create(owner=owner, task_id="video_admin", model="veo-3")
    response = admin_client.get("/admin/videos/videotask/", params)
    assert response.status_code in (200, 302)


# Concurrent identical submissions


@pytest.mark.django_db(transaction=True)
def test_identical_track_submissions_racing_all_answer_and_make_one_row(owner):
    # On SQLite too: writes take turns on the file lock, but each request looked for the
    # IDs before its turn came, so the race is the same.
    clients = []
    for _ in range(8):
        client = Client()
        client.force_login(owner)
        clients.append(client)
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def submit(client: Client) -> None:
        try:
            barrier.wait(timeout=10)
            response = client.post("/tasks/track/", {"task_ids": "video_race  Racing\nvideo_race_2"})
            statuses.append(response.status_code)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert sorted(statuses) == [302] * 8
    assert VideoTask.objects.filter(owner=owner, task_id="video_race").count() == 1
    assert VideoTask.objects.filter(owner=owner, task_id="video_race_2").count() == 1
    # One "tracked" event per task: the losers of the race recorded nothing.
    assert TaskEvent.objects.filter(kind=TaskEvent.Kind.TRACKED).count() == 2


def test_tracking_what_a_concurrent_request_just_tracked_reports_it_as_already_tracked(owner, monkeypatch):
    """The race's losing side, made certain: another request inserts the row after this
    one has looked for it and before its own insert."""
    real_values_list = VideoTaskQuerySet.values_list

    def look_then_lose_the_race(self, *fields, **kwargs):
        rows = list(real_values_list(self, *fields, **kwargs))
        if fields == ("task_id",) and not VideoTask.objects.filter(task_id="video_raced").exists():
            VideoTask.objects.bulk_create([VideoTask(owner=owner, task_id="video_raced")])
        return rows

    monkeypatch.setattr(VideoTaskQuerySet, "values_list", look_then_lose_the_race)
    created, already = VideoTask.objects.track(owner, [("video_raced", "Label"), ("video_free", "")])
    assert [task.task_id for task in created] == ["video_free"]
    assert already == ["video_raced"]
    assert VideoTask.objects.filter(task_id="video_raced").count() == 1
    assert TaskEvent.objects.filter(task__task_id="video_raced").count() == 0


@pytest.mark.parametrize("ids", ["1,\u00b2", "\uff11\uff12", "1,\x00", "9" * 40, "-1,+2"])
def test_odd_task_numbers_in_a_live_refresh_are_ignored(signed_in, ids):
    # str.isdigit() accepts "²" and full-width digits, which int() then refuses or reads.
    response = signed_in.get("/tasks/live/", {"token": "stale", "ids": ids}, headers=HX)
    assert response.status_code in (200, 204, 286)
