"""One write path for what a page shows: however a task changes (the worker, the keeper, the
admin, a `save()` or an `update()` in a shell), changed_at moves, so open pages pick the
change up on their next refresh; bookkeeping-only writes leave it alone, so idle refreshes
stay empty."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.fake_provider import PROVIDER_KEY, Reply, video
from tests.pages import live_params
from videos import keep
from videos.client import VideoAPIClient
from videos.models import KeepState, Status, TaskEvent, VideoTask
from videos.polling import Poller

HX = {"HX-Request": "true"}
# Written by the worker on every poll (or by the keeper between copies) and shown nowhere
# as news: the rest of the model is VideoTask.DISPLAYED_FIELDS.
BOOKKEEPING = {
    "id",
    # A task stays in the workspace it was added to, and how it was added does not change.
    "workspace",
    "added_via",
    "api_key",
    "raw_payload",
    "last_polled_at",
    "next_poll_at",
    "poll_count",
    "consecutive_errors",
    "not_found_count",
    "keep_attempts",
    "next_keep_at",
    "lease_token",
    "created_at",
    "changed_at",
}
AN_HOUR_AGO = timezone.now() - timedelta(hours=1)


def make_task(owner, task_id: str, **fields) -> VideoTask:
    fields.setdefault("changed_at", AN_HOUR_AGO)
    return VideoTask.objects.create(owner=owner, task_id=task_id, **fields)


def changed_at(task: VideoTask):
    return VideoTask.objects.values_list("changed_at", flat=True).get(pk=task.pk)


def next_refresh(client) -> dict[str, str]:
    """The token and ids the dashboard sends with its next live refresh."""
    return live_params(client.get("/").content.decode())


def admin_edit(admin_client, task: VideoTask, **changes) -> None:
    """Submit the admin's change form for `task` as an operator would, changing `changes`."""
    task.refresh_from_db()
    form = {
        "label": task.label,
        "status": task.status,
        "progress": task.progress,
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        **changes,
    }
    if task.polling_stopped:
        form["polling_stopped"] = "on"
    response = admin_client.post(f"/admin/videos/videotask/{task.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]


def test_every_field_is_either_displayed_or_bookkeeping():
    # A new field must be put on one side or the other: shown, it has to reach open pages.
    names = {field.name for field in VideoTask._meta.concrete_fields}
    assert VideoTask.DISPLAYED_FIELDS.isdisjoint(BOOKKEEPING)
    assert names == VideoTask.DISPLAYED_FIELDS | BOOKKEEPING


def test_an_admin_edit_reaches_the_open_dashboard(admin_client, client, owner):
    client.force_login(owner)
    edited = make_task(owner, "edited", status=Status.PROCESSING, progress=20)
    running = make_task(owner, "running", status=Status.PROCESSING, progress=50)
    params = next_refresh(client)
    assert client.get("/tasks/live/", params, headers=HX).status_code == 204

    admin_edit(admin_client, edited, progress=70)

    assert changed_at(edited) > AN_HOUR_AGO
    response = client.get("/tasks/live/", params, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="task-{edited.pk}"' in html and "70%" in html
    assert f'id="task-{running.pk}"' not in html


def test_an_admin_edit_that_finishes_every_shown_task_stops_the_polling(admin_client, client, owner):
    client.force_login(owner)
    make_task(owner, "done", status=Status.COMPLETED, progress=100)
    stuck = make_task(owner, "stuck", status=Status.PROCESSING, progress=30)
    params = next_refresh(client)

    admin_edit(admin_client, stuck, status=Status.FAILED)

    response = client.get("/tasks/live/", params, headers=HX)
    assert response.status_code == 286
    assert f'id="task-{stuck.pk}" class="task status-failed"' in response.content.decode()
    # The operator's change is on the task's timeline, with who made it.
    event = stuck.events.get(kind=TaskEvent.Kind.STATUS)
    assert (event.previous_status, event.status) == (Status.PROCESSING, Status.FAILED)
    assert "admin" in event.message


def test_an_admin_edit_of_progress_is_a_percentage(admin_client, owner):
    task = make_task(owner, "pct", status=Status.PROCESSING, progress=20)
    form = {"label": "", "status": task.status, "progress": "150"}
    form |= {"events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0"}
    response = admin_client.post(f"/admin/videos/videotask/{task.pk}/change/", form)
    assert response.status_code == 200  # the form again, with its error
    task.refresh_from_db()
    assert (task.progress, changed_at(task)) == (20, AN_HOUR_AGO)


def test_an_admin_edit_writes_only_what_the_operator_changed(admin_client, owner):
    task = make_task(owner, "busy", status=Status.PROCESSING, progress=20, label="Old")
    page_loaded = VideoTask.objects.get(pk=task.pk)
    # The worker polls meanwhile; the form, loaded before, must not write its values back.
    VideoTask.objects.filter(pk=task.pk).update(model="veo-3", poll_count=7)
    admin_edit(admin_client, page_loaded, label="New", progress=page_loaded.progress)
    task.refresh_from_db()
    assert (task.label, task.model, task.poll_count) == ("New", "veo-3", 7)


def test_save_bumps_changed_at_when_a_displayed_field_changes(owner):
    task = make_task(owner, "shell", status=Status.PROCESSING)
    task.status = Status.FAILED
    task.save()
    assert changed_at(task) > AN_HOUR_AGO

    other = make_task(owner, "shell-2", status=Status.PROCESSING)
    other.progress = 40
    other.save(update_fields=["progress"])
    assert changed_at(other) > AN_HOUR_AGO


def test_bookkeeping_only_writes_stay_silent(owner):
    task = make_task(owner, "quiet", status=Status.PROCESSING)
    task.next_poll_at = timezone.now()
    task.save()  # a full save that changes nothing shown
    task.poll_count = 3
    task.save(update_fields=["poll_count"])
    VideoTask.objects.filter(pk=task.pk).update(last_polled_at=timezone.now(), consecutive_errors=2)
    VideoTask.objects.filter(pk=task.pk).poll_soon()  # running and not stopped: only made due
    assert changed_at(task) == AN_HOUR_AGO


def test_a_data_fix_with_update_reaches_open_pages(owner):
    task = make_task(owner, "fixed", status=Status.PROCESSING)
    assert VideoTask.objects.filter(pk=task.pk).update(status=Status.FAILED) == 1
    assert changed_at(task) > AN_HOUR_AGO


def test_poll_now_in_the_admin_goes_through_the_model(admin_client, owner):
    stopped = make_task(owner, "stopped", status=Status.PROCESSING, polling_stopped=True)
    running = make_task(owner, "running", status=Status.PROCESSING)
    done = make_task(owner, "done", status=Status.COMPLETED)
    admin_client.post(
        "/admin/videos/videotask/",
        {"action": "poll_now", "_selected_action": [stopped.pk, running.pk, done.pk]},
    )
    assert set(VideoTask.objects.due().values_list("pk", flat=True)) == {stopped.pk, running.pk}
    # Resuming shows on the task page; making a running task due shows nothing.
    assert changed_at(stopped) > AN_HOUR_AGO
    assert changed_at(running) == changed_at(done) == AN_HOUR_AGO


def test_the_keepers_writes_reach_open_pages(configured, owner):
    configured.script(
        "GET /videos/video_keep/content",
        Reply(200, body=b"\x00\x00\x00\x18ftypmp42" + b"frames" * 100, headers={"Content-Type": "video/mp4"}),
        Reply(404, {"error": {"message": "no thumbnail"}}),
    )
    task = make_task(
        owner,
        "video_keep",
        status=Status.COMPLETED,
        progress=100,
        keep_state=KeepState.WAITING,
        next_keep_at=timezone.now(),
    )
    assert keep.run() == 1
    task.refresh_from_db()
    assert task.keep_state == KeepState.KEPT
    assert task.changed_at > AN_HOUR_AGO


def test_the_keeper_decides_which_finished_tasks_to_keep(owner, settings):
    now = timezone.now()
    running = make_task(owner, "running", status=Status.PROCESSING)
    assert keep.start(running, now) == set()
    finished = make_task(owner, "finished", status=Status.COMPLETED)
    assert keep.start(finished, now) == {"keep_state", "next_keep_at"}
    assert (finished.keep_state, finished.next_keep_at) == (KeepState.WAITING, now)
    settings.VIDEO_KEEP = False
    unkept = make_task(owner, "unkept", status=Status.COMPLETED)
    assert keep.start(unkept, now) == set()


@pytest.mark.parametrize("keeping", [True, False])
def test_the_poller_asks_the_keeper_on_completion(configured, owner, settings, keeping):
    settings.VIDEO_KEEP = keeping
    configured.script("video_done", video("video_done", "completed", 100, url="https://cdn.example/v.mp4"))
    task = make_task(owner, "video_done", status=Status.PROCESSING, progress=50)
    poller = Poller(VideoAPIClient(configured.base_url, PROVIDER_KEY), concurrency=1)
    try:
        assert poller.run_pass().polled == 1
    finally:
        poller.close()
    task.refresh_from_db()
    assert task.status == Status.COMPLETED and task.changed_at > AN_HOUR_AGO
    assert task.keep_state == (KeepState.WAITING if keeping else "")
