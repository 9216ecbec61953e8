"""Tracking tasks from the form: every pasted line answered, with or without htmx."""

from __future__ import annotations

from tests.pages import HX, make_task
from videos.models import TaskEvent, VideoTask

# Tracking tasks


def test_tracking_many_ids_reports_each_line(signed_in, owner):
    make_task(owner, "video_known")
    text = "\n".join(
        [
            "video_a  Sunset take 2",
            "video_known",
            "..",
            "bad\x00id",
            "labelled  with a \x00 NUL",
            "video/with+slash=",
            "video_a duplicate line",
            "",
        ]
    )
    response = signed_in.post("/tasks/track/", {"task_ids": text}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert set(VideoTask.objects.filter(owner=owner).values_list("task_id", flat=True)) == {
        "labelled",
        "video_known",
        "video_a",
        "video/with+slash=",
    }
    assert VideoTask.objects.get(task_id="video_a").label == "Sunset take 2"
    assert "Now tracking 3 tasks" in html
    assert VideoTask.objects.get(task_id="labelled").label == "with a  NUL"
    assert "Already tracked: <code>video_known</code>" in html
    assert "Line 3" in html and "only of dots" in html
    assert "Line 4" in html
    # The list is redrawn at once, out of band, and the page starts polling.
    assert 'id="task-rows" hx-swap-oob="true"' in html
    assert 'id="live" hx-swap-oob="true" data-live' in html
    new = VideoTask.objects.get(task_id="video_a")
    assert new.next_poll_at is None  # due at once: polled within seconds
    assert new.events.get().kind == TaskEvent.Kind.TRACKED


def test_tracking_nothing_valid_says_why(signed_in):
    response = signed_in.post("/tasks/track/", {"task_ids": "..\n.\n"}, headers=HX)
    html = response.content.decode()
    assert "No task ID could be tracked." in html
    assert not VideoTask.objects.exists()


def test_tracking_without_htmx_redirects_with_messages(signed_in):
    response = signed_in.post("/tasks/track/", {"task_ids": "video_z"}, follow=True)
    assert response.redirect_chain == [("/w/owner/", 302)]  # the board, by its slug
    assert "Now tracking 1 task(s)." in response.content.decode()
