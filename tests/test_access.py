"""Who may see and do what: signing in, another user's task, CSRF."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.pages import HX, make_task
from videos.models import Status, VideoTask

# Signing in, and what needs it


@pytest.mark.parametrize("url", ["/", "/tasks/1/", "/tasks/live/", "/status/", "/tasks/1/stop/"])
def test_pages_require_a_signed_in_user(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_form_uses_username_and_password(client, owner):
    page = client.get("/accounts/login/").content.decode()
    assert 'name="username"' in page and 'name="password"' in page
    response = client.post("/accounts/login/", {"username": "owner", "password": "owner-password-1"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_sign_out_is_a_post(signed_in):
    assert signed_in.post("/accounts/logout/").status_code == 302
    assert signed_in.get("/").status_code == 302


# Scoping: another user's task is a 404 everywhere


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("get", "/tasks/{pk}/", {}),
        ("get", "/tasks/{pk}/", HX),
        ("post", "/tasks/{pk}/refresh/", {}),
        ("post", "/tasks/{pk}/refresh/", HX),
        ("get", "/tasks/{pk}/stop/", {}),
        ("post", "/tasks/{pk}/stop/", HX),
    ],
)
def test_another_users_task_is_a_404(client, owner, outsider, method, url, headers):
    task = make_task(owner, status=Status.PROCESSING)
    client.force_login(outsider)
    response = getattr(client, method)(url.format(pk=task.pk), headers=headers)
    assert response.status_code == 404
    task.refresh_from_db()
    assert task.next_poll_at is None  # the refresh did nothing
    assert VideoTask.objects.filter(pk=task.pk).exists()


def test_the_dashboard_and_its_refresh_show_only_my_tasks(client, owner, outsider):
    mine = make_task(owner, "mine", label="my video")
    theirs = make_task(outsider, "theirs", label="their video", status=Status.PROCESSING)
    client.force_login(owner)
    page = client.get("/").content.decode()
    assert "my video" in page and "their video" not in page
    # Asking the refresh for their row by ID leaks nothing either.
    response = client.get("/tasks/live/", {"token": "stale", "ids": f"{mine.pk},{theirs.pk}"}, headers=HX)
    assert "their video" not in response.content.decode()
    assert "theirs" not in response.content.decode()


# CSRF


def test_posts_need_the_csrf_token(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post("/tasks/track/", {"task_ids": "video_1"}).status_code == 403
    assert not VideoTask.objects.exists()
    page = client.get("/").content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    # htmx sends the token from the body's hx-headers.
    response = client.post("/tasks/track/", {"task_ids": "video_1"}, headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 200
    assert VideoTask.objects.filter(owner=owner, task_id="video_1").exists()
