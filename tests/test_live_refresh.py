"""The dashboard's live refresh: empty and cheap when nothing changed, rows when they did."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from tests.pages import HX, live_params, make_task
from videos.models import Status, VideoTask

# The live refresh


def test_an_unchanged_refresh_is_empty_and_cheap(signed_in, owner, django_assert_num_queries):
    for i in range(3):
        make_task(owner, f"few{i}", status=Status.PROCESSING)
    params = live_params(signed_in.get("/").content.decode())
    # Session, user, and the membership with its workspace: no template, no rows, however
    # many tasks the workspace has.
    with django_assert_num_queries(3):
        response = signed_in.get("/tasks/live/", params, headers=HX)
    assert response.status_code == 204
    assert response.content == b""

    VideoTask.objects.bulk_create(
        [VideoTask(owner=owner, task_id=f"many{i}", status=Status.PROCESSING) for i in range(500)]
    )
    params = live_params(signed_in.get("/").content.decode())
    with django_assert_num_queries(3):
        response = signed_in.get("/tasks/live/", params, headers=HX)
    assert response.status_code == 204


def test_a_changed_task_comes_back_as_its_row_alone(signed_in, owner, django_assert_max_num_queries):
    quiet = make_task(owner, "quiet", status=Status.PROCESSING, progress=10)
    busy = make_task(owner, "busy", status=Status.PROCESSING, progress=10)
    # Both last changed well before the page was drawn (a change within the refresh's
    # clock slack of the page's time is sent again, to be safe).
    VideoTask.objects.update(changed_at=timezone.now() - timedelta(minutes=1))
    params = live_params(signed_in.get("/").content.decode())
    VideoTask.objects.filter(pk=busy.pk).update(progress=60, changed_at=timezone.now())
    with django_assert_max_num_queries(6):
        response = signed_in.get("/tasks/live/", params, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="task-{busy.pk}"' in html and "60%" in html
    assert f'id="task-{quiet.pk}"' not in html
    assert 'id="counts" aria-label="Tasks by status" hx-swap-oob="true"' in html
    assert 'id="live" hx-swap-oob="true" data-live' in html


def test_polling_stops_when_every_shown_task_has_finished(signed_in, owner):
    task = make_task(owner, "ending", status=Status.PROCESSING, progress=90)
    params = live_params(signed_in.get("/").content.decode())
    VideoTask.objects.filter(pk=task.pk).update(
        status=Status.COMPLETED, progress=100, url="https://cdn.example/e.mp4", changed_at=timezone.now()
    )
    response = signed_in.get("/tasks/live/", params, headers=HX)
    html = response.content.decode()
    assert response.status_code == 286
    assert f'href="/tasks/{task.pk}/download/" download' in html
    assert re.search(r'<div id="live" hx-swap-oob="true"></div>', html)
    # And a page of finished tasks does not poll at all.
    assert "data-live" not in signed_in.get("/").content.decode()


def test_a_task_added_elsewhere_redraws_the_list(signed_in, owner):
    make_task(owner, "first", status=Status.PROCESSING)
    params = live_params(signed_in.get("/").content.decode())
    make_task(owner, "added-in-another-tab", status=Status.PENDING)
    html = signed_in.get("/tasks/live/", params, headers=HX).content.decode()
    assert 'id="task-rows" hx-swap-oob="true"' in html
    assert "added-in-another-tab" in html


def test_the_dashboard_costs_the_same_with_many_tasks(signed_in, owner, django_assert_num_queries):
    make_task(owner, "one", status=Status.PROCESSING)
    signed_in.get("/")  # the first visit remembers the workspace as the current one (a write)
    # session, user, membership and workspace, counts, page, open submissions, kept
    # storage, provider state, heartbeat, the header's workspaces, the forms' connections,
    # the model filter's choices
    with django_assert_num_queries(12):
        signed_in.get("/")
    VideoTask.objects.bulk_create(
        [VideoTask(owner=owner, task_id=f"bulk{i}", status=Status.PROCESSING) for i in range(300)]
    )
    with django_assert_num_queries(12):
        response = signed_in.get("/")
    assert response.content.decode().count('class="task status-') == 50
