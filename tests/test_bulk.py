"""Bulk actions on the board: a confirmation that counts what will really be acted on,
the same role checks as the single actions, never a task of another workspace, and "all N
matching" meaning exactly the filter."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.test import Client

from teams.models import AuditEntry, Role
from tests.fake_provider import video
from tests.pages import finished, join, make_task
from videos.models import Status, VideoTask


def signed_in_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(team, owner):
    user = type(owner).objects.create_user("viewer1", password="viewer-password-1")
    join(team, user, Role.VIEWER)
    return user


def test_the_board_has_a_checkbox_per_row_and_all_n_matching(owner, team):
    tasks = [
        make_task(owner, f"video_{i}", workspace=team, model="sora-2" if i < 3 else "") for i in range(5)
    ]
    html = signed_in_as(owner).get("/w/team/", {"model": "sora-2"}).content.decode()
    for task in tasks[:3]:
        assert f'<input type="checkbox" name="pk" value="{task.pk}" form="bulk-form"' in html
    assert "Select all 3 tasks matching this filter" in html
    assert re.search(r'<form class="bulk" id="bulk-form" method="post" action="/w/team/bulk/"', html)
    assert '<input type="hidden" name="model" value="sora-2">' in html
    for label in ["Stop tracking", "Refresh now", "Download list"]:
        assert f">{label}</button>" in html


def test_stop_tracking_confirms_the_count_then_stops_only_this_workspaces_tasks(owner, teammate, team):
    mine = [make_task(owner, f"video_{i}", workspace=team) for i in range(3)]
    elsewhere = make_task(teammate, "video_personal")  # the teammate's personal workspace
    client = signed_in_as(teammate)
    pks = [str(task.pk) for task in mine[:2]] + [str(elsewhere.pk)]
    confirm = client.post("/w/team/bulk/", {"action": "stop", "pk": pks})
    html = confirm.content.decode()
    assert "Stop tracking 2 tasks?" in html
    assert f'name="pk" value="{elsewhere.pk}"' not in html
    # Even posted straight to the confirmed form, the other workspace's pk is ignored.
    done = client.post("/w/team/bulk/", {"action": "stop", "pk": pks, "confirm": "1"})
    assert done.status_code == 302 and done["Location"] == "/w/team/"
    assert set(VideoTask.objects.values_list("task_id", flat=True)) == {"video_2", "video_personal"}
    trail = AuditEntry.objects.filter(workspace=team, kind=AuditEntry.Kind.STOPPED_TRACKING)
    assert sorted(trail.values_list("target", flat=True)) == ["video_0", "video_1"]
    assert not AuditEntry.objects.exclude(workspace=team).exists()


def test_all_matching_acts_on_exactly_the_filter(owner, team):
    failed = [make_task(owner, f"video_f{i}", workspace=team, status=Status.FAILED) for i in range(3)]
    make_task(owner, "video_running", workspace=team, status=Status.PROCESSING)
    make_task(owner, "video_other_failed")  # the owner's personal workspace
    client = signed_in_as(owner)
    form = {"action": "stop", "all": "1", "status": "failed"}
    html = client.post("/w/team/bulk/", form).content.decode()
    assert "Stop tracking 3 tasks?" in html
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))
    assert hidden["status"] == "failed" and hidden["all"] == "1"
    assert int(hidden["upto"]) == max(task.pk for task in failed)
    # A task that starts matching after the confirmation was shown is not swept along.
    late = make_task(owner, "video_late", workspace=team, status=Status.FAILED)
    client.post("/w/team/bulk/", {**hidden, "action": "stop", "confirm": "1"})
    assert set(VideoTask.objects.values_list("task_id", flat=True)) == {
        "video_running",
        "video_other_failed",
        late.task_id,
    }


def test_refresh_makes_the_unfinished_selected_tasks_due(owner, team):
    running = make_task(owner, "video_run", workspace=team, status=Status.PROCESSING, polling_stopped=True)
    done = finished(owner, "video_done", workspace=team)
    client = signed_in_as(owner)
    html = client.post("/w/team/bulk/", {"action": "refresh", "pk": [running.pk, done.pk]}).content.decode()
    assert "Refresh 2 tasks?" in html
    response = client.post(
        "/w/team/bulk/", {"action": "refresh", "pk": [running.pk, done.pk], "confirm": "1"}, follow=True
    )
    assert "Asked the worker to check 1 unfinished task now." in response.content.decode()
    running.refresh_from_db()
    assert running.next_poll_at is not None and not running.polling_stopped


@pytest.mark.parametrize("action", ["stop", "refresh"])
def test_a_viewer_may_not_act_and_nothing_changes(viewer, owner, team, action):
    task = make_task(owner, "video_1", workspace=team, status=Status.PROCESSING)
    client = signed_in_as(viewer)
    for data in [{"action": action, "pk": task.pk}, {"action": action, "pk": task.pk, "confirm": "1"}]:
        assert client.post("/w/team/bulk/", data).status_code == 403
    task.refresh_from_db()
    assert task.next_poll_at is None
    html = client.get("/w/team/").content.decode()
    assert ">Stop tracking</button>" not in html and ">Download list</button>" in html


def test_an_outsider_gets_404(outsider, owner, team):
    task = make_task(owner, "video_1", workspace=team)
    response = signed_in_as(outsider).post("/w/team/bulk/", {"action": "stop", "pk": task.pk, "confirm": "1"})
    assert response.status_code == 404
    assert VideoTask.objects.filter(pk=task.pk).exists()


def test_download_list_is_the_selected_tasks_as_csv_for_a_viewer_too(viewer, owner, teammate, team):
    chosen = finished(owner, "video_a", workspace=team)
    make_task(owner, "video_b", workspace=team)
    theirs = make_task(teammate, "video_c")
    response = signed_in_as(viewer).post("/w/team/bulk/", {"action": "csv", "pk": [chosen.pk, theirs.pk]})
    text = b"".join(response.streaming_content).decode().removeprefix("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["task ID"] for row in rows] == ["video_a"]
    assert rows[0]["download link"] == f"http://testserver/tasks/{chosen.pk}/download/"


def test_nothing_selected_says_so(owner, team):
    response = signed_in_as(owner).post("/w/team/bulk/", {"action": "stop"}, follow=True)
    assert "No selected task to act on." in response.content.decode()


def test_retry_starts_each_failed_video_started_here_once_and_says_why_not_for_others(
    configured, owner, team
):
    """One create per failed video started here, on the fake provider; a tracked one (no
    settings known) and a running one are not sent."""
    client = signed_in_as(owner)
    configured.script("POST /videos", video("video_started", "queued", 0))
    client.post(
        "/w/team/videos/new/",
        {"prompt": "Waves at dusk", "model": "veo-3", "size": "1280x720", "seconds": "8"},
    )
    started = VideoTask.objects.get(task_id="video_started")
    VideoTask.objects.filter(pk=started.pk).update(status=Status.FAILED, error_code="internal_error")
    tracked = make_task(owner, "video_tracked", workspace=team, status=Status.FAILED)
    running = make_task(owner, "video_running", workspace=team, status=Status.PROCESSING)
    pks = [started.pk, tracked.pk, running.pk]

    html = client.post("/w/team/bulk/", {"action": "retry", "pk": pks}).content.decode()
    assert "Retry 2 tasks?" in html  # the failed ones only
    configured.script("POST /videos", video("video_again", "queued", 0))
    page = client.post(
        "/w/team/bulk/", {"action": "retry", "pk": pks, "confirm": "1"}, follow=True
    ).content.decode()
    assert "Retried 1 task." in page
    assert "Not retried: video_tracked: This video was not started here" in page
    assert (
        len([seen for seen in configured.requests if seen.method == "POST"]) == 2
    )  # the start and one retry
    again = VideoTask.objects.get(task_id="video_again")
    assert again.workspace == team
    assert AuditEntry.objects.filter(kind=AuditEntry.Kind.STARTED, target="video_again").exists()
