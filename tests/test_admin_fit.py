"""The task changelist fits a laptop screen and shows why a task failed; the Workers page
says which worker is alive (issue 12, item 12)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from videos.models import Status, VideoTask, WorkerHeartbeat
from videos.worker_status import STALE_AFTER


@pytest.fixture
def admin_client(client, db):
    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-1")
    client.force_login(admin)
    return client


def headers(html: str) -> list[str]:
    start = html.index("<thead>")
    return re.findall(r"column-(\w+)", html[start : html.index("</thead>", start)])


def test_the_changelist_has_few_columns_and_the_poll_bookkeeping_is_on_the_change_page(admin_client, owner):
    task = VideoTask.objects.create(owner=owner, task_id="video_" + "x" * 40, label="Harbour at dusk")
    html = admin_client.get("/admin/videos/videotask/").content.decode()
    columns = headers(html)
    assert set(columns) >= {"task", "state", "progress", "error", "workspace", "added", "polled"}
    for gone in ("next_poll_at", "poll_count", "raw_status", "polling_stopped", "connection", "model"):
        assert gone not in columns, gone
    # A long ID is cut in the cell, whole in its tooltip; the label under it.
    assert f'title="{task.task_id}"' in html
    assert "video_xxxxxxxxxxx…" in html
    assert "Harbour at dusk" in html
    change = admin_client.get(f"/admin/videos/videotask/{task.pk}/change/").content.decode()
    for field in ("next_poll_at", "poll_count", "consecutive_errors"):
        assert f"field-{field}" in change, field


def test_the_error_shows_as_its_code_and_the_start_of_its_message(admin_client, owner):
    message = "The content policy refused this prompt because it names a real person. " * 3
    VideoTask.objects.create(
        owner=owner,
        task_id="video_failed",
        status=Status.FAILED,
        error_code="moderation_blocked",
        error_message=message,
    )
    VideoTask.objects.create(owner=owner, task_id="video_stuck", last_error="HTTP 502 from the provider")
    html = admin_client.get("/admin/videos/videotask/").content.decode()
    assert 'class="vt-status vt-failed">failed<' in html
    shown = f"moderation_blocked {message}"[:59] + "…"
    assert shown in html
    assert message not in html.replace(f'title="moderation_blocked {message}"', "")
    # A task still running with a failing poll shows why it is stuck.
    assert "HTTP 502 from the provider" in html


def test_last_polled_is_a_relative_time(admin_client, owner):
    VideoTask.objects.create(
        owner=owner, task_id="video_polled", last_polled_at=timezone.now() - timedelta(minutes=3, seconds=5)
    )
    VideoTask.objects.create(owner=owner, task_id="video_new")
    html = admin_client.get("/admin/videos/videotask/").content.decode()
    assert "3\xa0minutes ago" in html
    assert ">never<" in html


def test_the_workers_page_says_which_worker_is_alive_stopped_or_silent(admin_client):
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="host:1", last_seen_at=now - timedelta(seconds=5))
    WorkerHeartbeat.objects.create(name="host:2", last_seen_at=now - timedelta(seconds=10), stopped_at=now)
    # Just past the banner's window: the same rule, one place (videos.worker_status).
    WorkerHeartbeat.objects.create(name="host:3", last_seen_at=now - STALE_AFTER - timedelta(seconds=5))
    html = admin_client.get("/admin/videos/workerheartbeat/").content.decode()
    rows = {name: html[html.index(f">{name}<") :][:2000] for name in ("host:1", "host:2", "host:3")}
    assert "vt-worker-alive" in rows["host:1"].split("</tr>")[0]
    assert "vt-worker-stopped" in rows["host:2"].split("</tr>")[0]
    assert "vt-worker-silent" in rows["host:3"].split("</tr>")[0]
