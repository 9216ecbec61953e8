"""Sorting and filters on the board: every sort pages by keyset and visits each task
exactly once, ties and nulls included; filters stay in the URL; unknown values are dropped."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from teams.models import ProviderConnection, Workspace
from tests.pages import make_task
from videos import listing
from videos.models import Status

STATUSES = [Status.PENDING, Status.PROCESSING, Status.COMPLETED, Status.FAILED]


def signed_in_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def row_pks(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="task-(\d+)"', html)]


@pytest.fixture
def many(owner, team):
    """23 tasks with many ties (progress, model, status), some without an expiry, and
    several created at the very same instant."""
    now = timezone.now()
    same = now - timedelta(hours=1)
    tasks = []
    for i in range(15):
        tasks.append(
            make_task(
                owner,
                f"video_{i:02}",
                workspace=team,
                status=STATUSES[i % 4],
                progress=(i % 3) * 50,
                model=["sora-2", "sora-2-pro", ""][i % 3],
                expires_at=None if i % 4 == 0 else now + timedelta(hours=i % 5),
                created_at=same if i % 2 else now - timedelta(minutes=i),
            )
        )
    return tasks


def walk(client: Client, url: str, backwards: bool = False) -> list[int]:
    seen: list[int] = []
    while url:
        html = client.get(url).content.decode()
        seen += row_pks(html)
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = found.group(1).replace("&amp;", "&") if found else ""
        if len(seen) > 200:
            raise AssertionError("the walk does not end")
    return seen


def walk_back(client: Client, url: str) -> list[int]:
    """From the last page back to the first by the "newer" links."""
    html = client.get(url).content.decode()
    pages = [row_pks(html)]
    while found := re.search(r'<a href="([^"]+)" rel="prev">', html):
        html = client.get(found.group(1).replace("&amp;", "&")).content.decode()
        pages.append(row_pks(html))
        assert len(pages) < 50
    return [pk for page in reversed(pages) for pk in page]


@pytest.mark.parametrize(
    "sort",
    ["", "created", "status", "-status", "progress", "-progress", "model", "-model", "expires", "-expires"],
)
def test_every_sort_walks_every_task_once_in_order(owner, team, many, sort, monkeypatch):
    monkeypatch.setattr(listing, "PAGE_SIZE", 4)
    client = signed_in_as(owner)
    seen = walk(client, f"/w/team/?sort={sort}" if sort else "/w/team/")
    assert sorted(seen) == sorted(task.pk for task in many)
    assert len(seen) == len(set(seen))

    by_pk = {task.pk: task for task in many}
    name = sort.lstrip("-") or "created"
    descending = sort.startswith("-") or not sort
    field = {
        "created": "created_at",
        "status": "status",
        "progress": "progress",
        "model": "model",
        "expires": "expires_at",
    }[name]

    def value(pk):
        raw = getattr(by_pk[pk], field)
        return STATUSES.index(raw) if name == "status" else raw

    # Nulls (no expiry) come last in either direction.
    present = [pk for pk in seen if value(pk) is not None]
    assert seen[len(present) :] == [pk for pk in seen if value(pk) is None]
    expected = sorted(present, key=lambda pk: (value(pk), pk), reverse=descending)
    expected += sorted((pk for pk in seen if value(pk) is None), reverse=descending)
    assert seen == expected


@pytest.mark.parametrize("sort", ["-progress", "expires"])
def test_walking_back_by_newer_links_gives_the_same_order(owner, team, many, sort, monkeypatch):
    monkeypatch.setattr(listing, "PAGE_SIZE", 5)
    client = signed_in_as(owner)
    forward = walk(client, f"/w/team/?sort={sort}")
    # The last page's URL, reached by walking; then back by "Newer".
    url, html = f"/w/team/?sort={sort}", ""
    while True:
        html = client.get(url).content.decode()
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        if not found:
            break
        url = found.group(1).replace("&amp;", "&")
    assert walk_back(client, url) == forward


def test_sort_headers_link_and_mark_the_current_column(owner, team, many):
    html = signed_in_as(owner).get("/w/team/?sort=-progress").content.decode()
    assert 'aria-sort="descending"><a href="/w/team/?sort=progress">Progress</a>' in html
    assert '<a href="/w/team/?sort=status">Status</a>' in html


def test_unknown_sort_and_filters_are_dropped_with_a_message(owner, team, many):
    response = signed_in_as(owner).get(
        "/w/team/",
        {"sort": "-password", "model": "nope", "connection": "999", "range": "year", "from": "2026-13-01"},
    )
    html = response.content.decode()
    for text in [
        "Unknown sort order ignored.",
        "Unknown model filter ignored.",
        "Unknown connection filter ignored.",
        "Unknown time range ignored.",
        "Unreadable “from” date ignored",
    ]:
        assert text in html
    assert len(row_pks(html)) == 15


def test_filters_model_connection_and_time_range(owner, team, outsider):
    connection = ProviderConnection(workspace=team, name="Second", base_url="https://example.com")
    connection.set_api_key("sk-sorting-0123456789")
    connection.save()
    now = timezone.now()
    today = make_task(owner, "video_today", workspace=team, model="sora-2", connection=connection)
    old = make_task(owner, "video_old", workspace=team, model="sora-2", created_at=now - timedelta(days=3))
    ancient = make_task(
        owner, "video_ancient", workspace=team, model="sora-2-pro", created_at=now - timedelta(days=30)
    )
    client = signed_in_as(owner)

    def pks(**params):
        return set(row_pks(client.get("/w/team/", params).content.decode()))

    assert pks(model="sora-2") == {today.pk, old.pk}
    assert pks(connection=str(connection.pk)) == {today.pk}
    assert pks(range="7d") == {today.pk, old.pk}
    assert pks(range="today") == {today.pk}
    day = (now - timedelta(days=30)).date().isoformat()
    assert pks(**{"from": day, "to": day}) == {ancient.pk}
    html = client.get("/w/team/", {"range": "7d", "model": "sora-2"}).content.decode()
    assert re.search(r'class="chip active" aria-current="true">7 days</a>', html)
    # The chips and headers keep the other filters.
    assert 'href="/w/team/?model=sora-2&amp;range=7d&amp;sort=status"' in html
    # Another workspace's connection is not one of this board's.
    other = ProviderConnection(
        workspace=Workspace.objects.create(name="Other", slug="other"),
        name="X",
        base_url="https://example.com",
    )
    other.set_api_key("sk-sorting-9876543210")
    other.save()
    assert (
        "Unknown connection filter ignored."
        in client.get("/w/team/", {"connection": str(other.pk)}).content.decode()
    )


def test_cursor_round_trips_every_kind():
    when = timezone.now()
    for cursor, kind, nullable in [
        (listing.Cursor(when, 7), "datetime", False),
        (listing.Cursor(None, 7), "datetime", True),
        (listing.Cursor(50, 3), "int", False),
        (listing.Cursor("sora_2_pro", 9), "text", False),
        (listing.Cursor("", 9), "text", False),
    ]:
        assert listing.Cursor.parse(str(cursor), kind, nullable) == cursor
    for bad in ["", "x_1", "1_x", "²_1", "_1"]:
        assert listing.Cursor.parse(bad) is None
