"""The Django admin as operators use it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from videos.models import ProviderState, Status, TaskEvent, VideoTask


@pytest.fixture
def admin_client(client, db):
    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-1")
    client.force_login(admin)
    return client


def tasks_for(n: int, owner) -> list[VideoTask]:
    return VideoTask.objects.bulk_create(
        [VideoTask(owner=owner, task_id=f"adm-{owner.pk}-{i}", model=f"model-{i % 3}") for i in range(n)]
    )


def test_the_changelist_costs_the_same_with_more_tasks(
    admin_client, owner, teammate, django_assert_num_queries
):
    # More than one page from the start, so both runs pay for the paginator's count.
    tasks_for(110, owner)
    admin_client.get("/admin/videos/videotask/")  # warm caches (content types, permissions)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get("/admin/videos/videotask/").status_code == 200
    assert len(few) <= 10
    tasks_for(150, teammate)
    with django_assert_num_queries(len(few)):
        response = admin_client.get("/admin/videos/videotask/")
    assert "adm-" in response.content.decode()


def test_filters_and_search(admin_client, owner, teammate):
    VideoTask.objects.create(
        owner=owner, task_id="find-me", label="Harbour", status=Status.FAILED, model="veo-3"
    )
    VideoTask.objects.create(owner=teammate, task_id="other", label="Forest", model="sora-2")
    for query in ("q=find-me", "q=Harbour", "q=owner", "status__exact=failed", "model=veo-3"):
        html = admin_client.get(f"/admin/videos/videotask/?{query}").content.decode()
        assert "find-me" in html, query
        assert ">other<" not in html, query


def test_the_change_page_shows_the_timeline_and_keeps_provider_fields_read_only(admin_client, owner):
    task = VideoTask.objects.create(owner=owner, task_id="detail", status=Status.PROCESSING, progress=40)
    TaskEvent.objects.create(
        task=task, kind=TaskEvent.Kind.STATUS, previous_status="pending", status="processing"
    )
    html = admin_client.get(f"/admin/videos/videotask/{task.pk}/change/").content.decode()
    assert "Status changed" in html
    assert 'name="model"' not in html  # read-only: no input
    assert 'name="raw_status"' not in html
    assert 'name="label"' in html
    # Status and progress are an operator's fix (tests/test_visible_changes.py), and a form
    # without them changes neither.
    assert 'name="status"' in html and 'name="progress"' in html
    response = admin_client.post(
        f"/admin/videos/videotask/{task.pk}/change/",
        {"label": "Renamed", "events-TOTAL_FORMS": "1", "events-INITIAL_FORMS": "1", "events-0-id": ""},
    )
    task.refresh_from_db()
    assert response.status_code in (200, 302)
    assert task.status == Status.PROCESSING
    assert task.progress == 40


def test_poll_now_and_stop_polling_actions(admin_client, owner):
    active = VideoTask.objects.create(
        owner=owner, task_id="act", status=Status.PROCESSING, next_poll_at=timezone.now() + timedelta(hours=1)
    )
    done = VideoTask.objects.create(owner=owner, task_id="fin", status=Status.COMPLETED)
    admin_client.post(
        "/admin/videos/videotask/",
        {"action": "stop_polling", "_selected_action": [active.pk]},
    )
    active.refresh_from_db()
    assert active.polling_stopped
    assert not VideoTask.objects.due().filter(pk=active.pk).exists()
    assert active.events.filter(kind=TaskEvent.Kind.NOTE, message="Polling stopped.").exists()

    admin_client.post(
        "/admin/videos/videotask/",
        {"action": "poll_now", "_selected_action": [active.pk, done.pk]},
    )
    active.refresh_from_db()
    assert not active.polling_stopped
    assert VideoTask.objects.due().filter(pk=active.pk).exists()
    assert not VideoTask.objects.due().filter(pk=done.pk).exists()


def test_events_are_browsable_without_n_plus_one(admin_client, owner, django_assert_max_num_queries):
    tasks = tasks_for(20, owner)
    TaskEvent.objects.bulk_create(
        [TaskEvent(task=t, kind=TaskEvent.Kind.TRACKED, status="pending") for t in tasks]
    )
    with django_assert_max_num_queries(8):
        response = admin_client.get("/admin/videos/taskevent/")
    assert response.status_code == 200
    assert "adm-" in response.content.decode()


def test_a_blocked_provider_can_be_resumed(admin_client):
    state = ProviderState.objects.create(base_url="https://gw.example/v1")
    state.block("The provider refused the API key (HTTP 401).", "abcd")
    html = admin_client.get("/admin/videos/providerstate/").content.decode()
    assert "refused the API key" in html
    admin_client.post("/admin/videos/providerstate/", {"action": "resume", "_selected_action": [state.pk]})
    state.refresh_from_db()
    assert state.blocked_reason == ""


def test_a_long_task_list_counts_only_up_to_a_cap(admin_client, owner, monkeypatch):
    # The list counts rows up to the cap and no further (a full COUNT reads every row), and
    # says so: "120+", never a made-up total.
    from videos.admin import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "cap", 120)
    tasks_for(130, owner)
    html = admin_client.get("/admin/videos/videotask/").content.decode()
    assert "120+ video tasks" in html
    assert "130 video tasks" not in html and "Select all 120+ video tasks" in html
    assert admin_client.get("/admin/videos/videotask/?p=2").status_code == 200
    few = admin_client.get("/admin/videos/videotask/?model=model-1").content.decode()
    assert f"{sum(1 for i in range(130) if i % 3 == 1)} video tasks" in few  # under the cap: exact
