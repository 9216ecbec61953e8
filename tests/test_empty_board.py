"""A new person's board explains how tasks get onto it (issue 12, item 14)."""

from __future__ import annotations

from django.urls import reverse

from teams.models import Workspace
from tests.pages import join, make_task


def _empty_state(client, slug: str | None = None) -> str:
    url = reverse("videos:dashboard") if slug is None else reverse("videos:board", args=[slug])
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    start = html.index('class="empty-board"')
    return html[start : html.index("</div>", start)]


def test_a_new_board_names_both_ways_to_add_tasks_and_the_api_keys_page(signed_in, owner):
    text = _empty_state(signed_in)
    assert "Two ways to add some" in text
    assert 'href="#track-panel">Track tasks</a>' in text
    assert "task IDs you already have" in text
    assert 'href="#create-panel">Start video</a>' in text
    # The owner of their personal workspace manages its keys: the API is offered with its page.
    slug = Workspace.objects.personal_for(owner).slug
    assert f'href="{reverse("api_keys:list", args=[slug])}"' in text


def test_a_viewer_is_not_told_to_do_what_they_may_not(client, team, teammate):
    join(team, teammate, "viewer")
    client.force_login(teammate)
    text = _empty_state(client, team.slug)
    assert "Track tasks" not in text and "Start video" not in text and "API keys" not in text
    assert "Tasks the workspace's members add will show here." in text


def test_a_member_sees_the_two_ways_but_not_the_keys_page(client, team, teammate):
    client.force_login(teammate)
    text = _empty_state(client, team.slug)
    assert "Track tasks" in text and "Start video" in text
    assert "API keys" not in text


def test_the_explanation_goes_once_there_is_a_task(signed_in, owner):
    make_task(owner)
    assert 'class="empty-board"' not in signed_in.get(reverse("videos:dashboard")).content.decode()
