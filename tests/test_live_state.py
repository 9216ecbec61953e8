"""Honest live state (issue 12 §6 to 8): overdue checks, the banner for staff and for everyone
else, Refresh now without a worker, the signed-out answer of the live refreshes, and the
kept-copies total in the board's live update."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from tests.pages import HX, live_params, make_task
from videos import worker_status
from videos.models import KeepState, Status, VideoTask, WorkerHeartbeat


@pytest.fixture
def worker_alive(db):
    return WorkerHeartbeat.objects.create(name="host:1", last_seen_at=timezone.now())


@pytest.fixture(autouse=True)
def fresh_silence_memo(db):
    worker_status._noted["key"] = ""
    cache.clear()
    yield
    worker_status._noted["key"] = ""


# Overdue checks


def test_a_row_whose_next_check_is_overdue_says_so_and_its_eta_stops(signed_in, owner):
    now = timezone.now()
    late = make_task(
        owner,
        "late",
        status=Status.PROCESSING,
        progress=40,
        eta_at=now + timedelta(minutes=2),
        next_poll_at=now - timedelta(minutes=2),
    )
    on_time = make_task(
        owner, "on_time", status=Status.PROCESSING, progress=40, next_poll_at=now + timedelta(minutes=1)
    )
    html = signed_in.get("/").content.decode()
    late_row = html[html.index(f'id="task-{late.pk}"') :].split("</tr>")[0]
    on_time_row = html[html.index(f'id="task-{on_time.pk}"') :].split("</tr>")[0]
    assert (
        'class="next-check"' in late_row
        and "hidden" not in late_row.split('class="next-check"')[1].split(">")[0]
    )
    assert "next check overdue" in late_row
    assert "ETA" in late_row and "unknown (next check overdue)" in late_row
    # Not yet late: the mark is there for the page's script to show, hidden.
    assert 'class="next-check"' in on_time_row and " hidden>next check overdue" in on_time_row


def test_the_task_page_says_overdue_not_expired(signed_in, owner):
    task = make_task(
        owner, "late", status=Status.PROCESSING, next_poll_at=timezone.now() - timedelta(minutes=2)
    )
    html = signed_in.get(f"/tasks/{task.pk}/").content.decode()
    assert "next check <time" in html and ">overdue</time>" in html
    assert "next check expired" not in html and ">expired</time>" not in html


def test_a_check_just_made_due_is_due_now_not_overdue(signed_in, owner):
    task = make_task(owner, "soon", status=Status.PROCESSING, next_poll_at=timezone.now())
    html = signed_in.get(f"/tasks/{task.pk}/").content.decode()
    assert ">due now</time>" in html


def test_a_task_being_checked_says_so_rather_than_its_lease_deadline(signed_in, owner):
    now = timezone.now()
    task = make_task(owner, "leased", status=Status.PENDING, next_poll_at=now + timedelta(minutes=1))
    VideoTask.objects.filter(pk=task.pk).update(lease_token=uuid.uuid4())
    html = signed_in.get(f"/tasks/{task.pk}/").content.decode()
    assert "next check <time" in html and ">under way</time>" in html
    assert "next check <time" in html and ">in 59 s</time>" not in html and ">in 1 min</time>" not in html


# The banner


def test_the_banner_tells_staff_what_to_run(signed_in, owner):
    owner.is_staff = True
    owner.save()
    html = signed_in.get("/").content.decode()
    assert "python manage.py poll_videos" in html
    assert "administrators have been told" not in html.lower()


def test_the_banner_tells_everyone_else_updates_are_delayed(signed_in, owner):
    html = signed_in.get("/").content.decode()
    assert "updates are delayed" in html
    assert "The administrators have been told" in html
    assert "poll_videos" not in html


def test_a_silent_worker_is_logged_once_per_silence(signed_in, owner, caplog):
    seen = timezone.now() - timedelta(minutes=5)
    WorkerHeartbeat.objects.create(name="host:1", last_seen_at=seen)
    with caplog.at_level(logging.WARNING, logger="videos.worker_status"):
        signed_in.get("/")
        signed_in.get("/")
        worker_status._noted["key"] = ""  # another web process: the cache still knows
        signed_in.get("/")
    warnings = [r for r in caplog.records if r.name == "videos.worker_status"]
    assert len(warnings) == 1 and "poll_videos" in warnings[0].getMessage()
    # A new silence (the worker came back, then stopped again) is logged again.
    WorkerHeartbeat.objects.filter(name="host:1").update(last_seen_at=seen + timedelta(minutes=2))
    with caplog.at_level(logging.WARNING, logger="videos.worker_status"):
        signed_in.get("/")
    assert len([r for r in caplog.records if r.name == "videos.worker_status"]) == 2


def test_a_running_worker_logs_nothing(signed_in, owner, worker_alive, caplog):
    with caplog.at_level(logging.WARNING, logger="videos.worker_status"):
        signed_in.get("/")
    assert not [r for r in caplog.records if r.name == "videos.worker_status"]


# Refresh now


def test_refresh_now_without_a_worker_says_it_is_not_running(signed_in, owner):
    task = make_task(
        owner, "waiting", status=Status.PROCESSING, next_poll_at=timezone.now() + timedelta(minutes=5)
    )
    html = signed_in.post(f"/tasks/{task.pk}/refresh/", headers=HX).content.decode()
    assert "worker that checks tasks is not running" in html
    assert "Asked the worker" not in html
    # Made due all the same: a worker that starts checks it first.
    task.refresh_from_db()
    assert task.next_poll_at <= timezone.now()


def test_refresh_now_with_a_worker_says_it_is_checking(signed_in, owner, worker_alive):
    task = make_task(owner, "waiting", status=Status.PROCESSING)
    html = signed_in.post(f"/tasks/{task.pk}/refresh/", headers=HX).content.decode()
    assert "Checking this task now" in html
    assert "not running" not in html


# Signed out


@pytest.mark.parametrize("url", ["/tasks/live/", "/status/"])
def test_a_signed_out_live_refresh_is_a_401_with_a_header(client, owner, url):
    response = client.get(url, headers={**HX, "HX-Current-URL": "http://testserver/?status=failed"})
    assert response.status_code == 401
    assert response["HX-Signed-Out"] == "1"
    assert response["HX-Login"] == "/accounts/login/?next=%2F%3Fstatus%3Dfailed"


def test_a_signed_out_task_page_refresh_is_a_401(client, owner):
    task = make_task(owner, "t")
    response = client.get(
        f"/tasks/{task.pk}/", headers={**HX, "HX-Current-URL": f"http://testserver/tasks/{task.pk}/"}
    )
    assert response.status_code == 401 and response["HX-Signed-Out"] == "1"
    assert response["HX-Login"].endswith(f"?next=%2Ftasks%2F{task.pk}%2F")


def test_a_signed_out_page_load_still_redirects_to_login(client, owner):
    task = make_task(owner, "t")
    response = client.get(f"/tasks/{task.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# The kept-copies total


def test_the_kept_total_comes_with_the_live_update(signed_in, owner):
    task = make_task(owner, "kept", status=Status.PROCESSING, progress=50)
    VideoTask.objects.update(changed_at=timezone.now() - timedelta(minutes=1))
    html = signed_in.get("/").content.decode()
    assert 'id="kept"' in html  # present though hidden, for the live update to replace
    params = live_params(html)
    VideoTask.objects.filter(pk=task.pk).update(
        status=Status.COMPLETED,
        progress=100,
        keep_state=KeepState.KEPT,
        kept_bytes=2 * 1024 * 1024,
        changed_at=timezone.now(),
    )
    update = signed_in.get("/tasks/live/", params, headers=HX).content.decode()
    assert 'id="kept" hx-swap-oob="true"' in update
    assert "Kept copies: 1 video, 2.0\xa0MB in storage." in update
