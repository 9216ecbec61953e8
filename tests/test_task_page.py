"""The task page: fields, timeline and durations, its refresh and its actions."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from tests.pages import HX, make_task
from videos.models import Status, TaskEvent, VideoTask, WorkerHeartbeat

# The task page


def test_the_task_page_shows_fields_timeline_and_durations(signed_in, owner):
    start = timezone.now() - timedelta(minutes=5)
    task = make_task(
        owner,
        "detail",
        label="Detail",
        status=Status.COMPLETED,
        progress=100,
        model="sora-2",
        size="1280x720",
        seconds="8",
        metadata={"prompt": "a cat", "nested": {"k": 1}},
        url="https://cdn.example/d.mp4",
    )
    for offset, kind, prev, status in [
        (0, TaskEvent.Kind.TRACKED, "", "pending"),
        (30, TaskEvent.Kind.STATUS, "pending", "processing"),
        (150, TaskEvent.Kind.STATUS, "processing", "completed"),
    ]:
        TaskEvent.objects.create(
            task=task, at=start + timedelta(seconds=offset), kind=kind, previous_status=prev, status=status
        )
    html = signed_in.get(f"/tasks/{task.pk}/").content.decode()
    assert "Queued 30 s · processing 2 min · total 2 min" in " ".join(html.split())
    assert "pending → processing" in html
    assert "&quot;prompt&quot;: &quot;a cat&quot;" in html
    assert "1280x720" in html and "8 s" in html and "sora-2" in html
    # A finished task offers no "Refresh now" and does not poll.
    assert "Refresh now" not in html
    assert "data-live" not in html


def test_the_task_page_refresh_is_empty_when_nothing_changed(signed_in, owner, django_assert_num_queries):
    task = make_task(owner, "watch", status=Status.PROCESSING, progress=5)
    html = signed_in.get(f"/tasks/{task.pk}/").content.decode()
    token = re.search(r'"token": "([^"]+)"', html).group(1)
    with django_assert_num_queries(3):
        response = signed_in.get(f"/tasks/{task.pk}/", {"token": token}, headers=HX)
    assert response.status_code == 204
    # A poll (even one that changed nothing visible) updates "last checked".
    VideoTask.objects.filter(pk=task.pk).update(last_polled_at=timezone.now())
    response = signed_in.get(f"/tasks/{task.pk}/", {"token": token}, headers=HX)
    assert response.status_code == 200
    assert response["Vary"] and "HX-Request" in response["Vary"]
    VideoTask.objects.filter(pk=task.pk).update(status=Status.FAILED, changed_at=timezone.now())
    response = signed_in.get(f"/tasks/{task.pk}/", {"token": token}, headers=HX)
    assert response.status_code == 286


def test_refresh_now_makes_the_task_due(signed_in, owner):
    WorkerHeartbeat.objects.create(name="w:1", last_seen_at=timezone.now())
    task = make_task(
        owner, "soon", status=Status.PROCESSING, next_poll_at=timezone.now() + timedelta(minutes=5)
    )
    response = signed_in.post(f"/tasks/{task.pk}/refresh/", headers=HX)
    assert "Checking this task now" in response.content.decode()
    assert VideoTask.objects.due().filter(pk=task.pk).exists()


def test_refresh_now_leaves_a_finished_task_alone(signed_in, owner):
    task = make_task(owner, "over", status=Status.COMPLETED)
    response = signed_in.post(f"/tasks/{task.pk}/refresh/", follow=True)
    assert "This task has finished; there is nothing more to check." in response.content.decode()
    assert not VideoTask.objects.due().filter(pk=task.pk).exists()


def test_stop_tracking_confirms_then_removes(signed_in, owner):
    task = make_task(owner, "bye", label="Goodbye")
    confirm = signed_in.get(f"/tasks/{task.pk}/stop/").content.decode()
    assert "Stop tracking?" in confirm and 'method="post"' in confirm
    assert VideoTask.objects.filter(pk=task.pk).exists()
    response = signed_in.post(f"/tasks/{task.pk}/stop/", headers=HX)
    assert response["HX-Redirect"] == "/w/owner/"  # the task's board, by its slug
    assert not VideoTask.objects.filter(pk=task.pk).exists()
    assert signed_in.get(f"/tasks/{task.pk}/").status_code == 404
