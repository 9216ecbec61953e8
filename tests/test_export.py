"""CSV export of a board's current filter: streamed, scoped to the workspace, safe to open
in a spreadsheet, and open to every role that may see the board."""

from __future__ import annotations

import csv
import io

from django.http import StreamingHttpResponse
from django.test import Client

from teams.models import Role
from tests.pages import finished, join, make_task
from videos import export
from videos.models import Status, VideoTaskQuerySet


def signed_in_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def read(response) -> list[dict[str, str]]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode("utf-8").removeprefix("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


def test_export_streams_the_filter_with_links(owner, team):
    done = finished(owner, "video_done", workspace=team, model="sora-2", label="Final cut")
    make_task(owner, "video_running", workspace=team, status=Status.PROCESSING, model="sora-2")
    response = signed_in_as(owner).get("/w/team/export.csv", {"status": "completed"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="team-tasks.csv"'
    rows = read(response)
    assert [row["task ID"] for row in rows] == ["video_done"]
    row = rows[0]
    assert row["label"] == "Final cut"
    assert row["added by"] == owner.get_username()
    assert row["dashboard link"] == f"http://testserver/tasks/{done.pk}/"
    assert row["download link"] == f"http://testserver/tasks/{done.pk}/download/"
    assert list(rows[0]) == export.HEADER


def test_export_reads_the_table_in_chunks_not_at_once(owner, team, monkeypatch):
    """The response iterates the queryset with a chunk size (a server-side cursor on
    PostgreSQL) rather than loading every row first."""
    for i in range(5):
        make_task(owner, f"video_{i}", workspace=team)
    asked: list[int | None] = []
    real = VideoTaskQuerySet.iterator

    def spy(self, chunk_size=None):
        asked.append(chunk_size)
        return real(self, chunk_size=chunk_size)

    monkeypatch.setattr(VideoTaskQuerySet, "iterator", spy)
    response = signed_in_as(owner).get("/w/team/export.csv")
    assert asked == []  # nothing read before the body is streamed
    assert len(read(response)) == 5
    assert asked == [export.CHUNK_SIZE]


def test_formula_cells_are_escaped(owner, team):
    make_task(
        owner,
        "video_f",
        workspace=team,
        label='=HYPERLINK("http://evil")',
        error_message="+1",
        model="@SUM(A1)",
    )
    make_task(owner, "video_g", workspace=team, label="-2", error_message="\tx", model="\r=1")
    rows = {row["task ID"]: row for row in read(signed_in_as(owner).get("/w/team/export.csv"))}
    assert rows["video_f"]["label"] == '\'=HYPERLINK("http://evil")'
    assert rows["video_f"]["error message"] == "'+1"
    assert rows["video_f"]["model"] == "'@SUM(A1)"
    assert rows["video_g"]["label"] == "'-2"
    assert rows["video_g"]["error message"] == "'\tx"
    assert rows["video_g"]["model"] == "'\r=1"
    assert export.safe_cell("plain") == "plain"
    assert export.safe_cell(None) == ""


def test_another_workspaces_tasks_are_never_exported(owner, teammate, team):
    make_task(owner, "video_team", workspace=team)
    make_task(owner, "video_personal")  # the owner's personal workspace
    make_task(teammate, "video_theirs")
    rows = read(signed_in_as(owner).get("/w/team/export.csv"))
    assert [row["task ID"] for row in rows] == ["video_team"]


def test_a_viewer_may_export_an_outsider_may_not(owner, outsider, team):
    make_task(owner, "video_team", workspace=team)
    viewer_user = type(owner).objects.create_user("viewer1", password="viewer-password-1")
    join(team, viewer_user, Role.VIEWER)
    assert [row["task ID"] for row in read(signed_in_as(viewer_user).get("/w/team/export.csv"))] == [
        "video_team"
    ]
    assert signed_in_as(outsider).get("/w/team/export.csv").status_code == 404
