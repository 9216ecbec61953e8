"""Every aria-describedby / aria-labelledby on the main pages names an element that exists
(tests/test_accessibility.py does the dashboard's forms): the board with tasks, a task page,
the login page, the connection forms (empty and with errors), the workspace settings page.
Also the per-person row density (videos:density)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from teams.models import ProviderConnection
from tests.browser.test_screenshot import build_dashboard
from tests.test_accessibility import dangling, references
from videos.models import Status, TaskEvent, VideoTask


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def test_the_board_and_a_task_page(signed_in, owner):
    build_dashboard(owner)
    html = page(signed_in, "/")
    assert dangling(html) == []
    # The page's own labelled regions are among what was checked.
    assert ("aria-labelledby", "track-title") in references(html)
    failed = VideoTask.objects.get(task_id="video_68f1a0d41e7481909c")
    TaskEvent.objects.create(task=failed, kind=TaskEvent.Kind.STATUS, status=Status.FAILED, message="blocked")
    for task in VideoTask.objects.all():
        assert dangling(page(signed_in, f"/tasks/{task.pk}/")) == [], task.task_id


def test_the_login_page_with_and_without_its_error(client, db):
    html = page(client, "/accounts/login/")
    assert dangling(html) == []
    answer = client.post("/accounts/login/", {"username": "nobody", "password": "wrong"})
    assert dangling(answer.content.decode()) == []


def test_the_connection_forms_and_the_settings_page(signed_in, team, provider):
    assert dangling(page(signed_in, "/w/team/connections/add/")) == []
    answer = signed_in.post("/w/team/connections/add/", {"name": "", "base_url": "not a url", "api_key": ""})
    assert answer.status_code == 200
    assert dangling(answer.content.decode()) == []
    connection = ProviderConnection(workspace=team, name="Gateway", base_url=provider.base_url)
    connection.set_api_key("sk-ref-0123456789")
    connection.save()
    for url in (
        f"/w/team/connections/{connection.pk}/",
        "/w/team/connections/",
        "/w/team/settings/",
        "/w/team/",
    ):
        assert dangling(page(signed_in, url)) == [], url


@pytest.fixture
def density_url() -> str:
    return reverse("videos:density")


def test_density_is_compact_until_changed_and_kept_per_person(signed_in, owner, client, density_url):
    VideoTask.objects.create(owner=owner, task_id="video_density")
    assert 'class="tasks density-compact"' in page(signed_in, "/")
    answer = signed_in.post(density_url, {"density": "comfortable", "next": "/?status=pending"})
    assert answer.status_code == 302 and answer["Location"] == "/?status=pending"
    assert 'class="tasks density-comfortable"' in page(signed_in, "/")
    # An unknown value changes nothing; a foreign "next" is not followed.
    answer = signed_in.post(density_url, {"density": "huge", "next": "https://evil.example/"})
    assert answer["Location"] == reverse("videos:dashboard")
    assert 'class="tasks density-comfortable"' in page(signed_in, "/")


def test_density_needs_a_post_and_a_person(client, signed_in, density_url):
    assert signed_in.get(density_url).status_code == 405
    anonymous = Client()
    answer = anonymous.post(density_url, {"density": "compact"})
    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]
