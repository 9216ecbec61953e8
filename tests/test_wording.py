"""What the board, the task page and the banner say, read as a user rather than as the code
(issue 12 §9): the new wording is pinned, and the old internal or wrong wording is gone."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from tests.pages import make_task
from videos.models import Status, VideoTask
from videos.templatetags.video_tags import next_check


def row_of(html: str, task: VideoTask) -> str:
    return html[html.index(f'id="task-{task.pk}"') :].split("</tr>")[0]


def test_a_failed_task_without_a_provider_word_has_no_badge_tooltip(signed_in, owner):
    task = make_task(owner, "failed_early", status=Status.FAILED, error_message="Not found at the provider.")
    row = row_of(signed_in.get("/").content.decode(), task)
    assert "none yet" not in row
    assert "Provider status:" not in row
    assert 'class="badge badge-failed">' in row


def test_the_badge_tooltip_quotes_the_provider(signed_in, owner):
    task = make_task(owner, "running", status=Status.PROCESSING, raw_status="in_progress")
    row = row_of(signed_in.get("/").content.decode(), task)
    assert 'title="The provider says: in_progress"' in row


def test_the_start_video_note_says_what_to_do(signed_in, owner):
    html = signed_in.get("/").content.decode()
    assert "Start video" in html
    assert "Press once: each start is a new, billed video." in html
    assert "the video appears in the list below by itself" in html
    # Not the internals: the worker, the provider's list, "sent once".
    assert "the worker finds it in the provider's list" not in html
    assert "Sent once:" not in html


def test_next_check_wording_is_overdue_never_expired(owner):
    now = timezone.now()
    late = make_task(owner, "late", status=Status.PROCESSING, next_poll_at=now - timedelta(minutes=1))
    soon = make_task(owner, "soon", status=Status.PROCESSING, next_poll_at=now + timedelta(seconds=90))
    due = make_task(owner, "due", status=Status.PROCESSING, next_poll_at=now - timedelta(seconds=2))
    done = make_task(owner, "done", status=Status.COMPLETED, next_poll_at=now - timedelta(minutes=1))
    assert next_check(late) == "overdue"
    assert next_check(soon) == "in 1 min"
    assert next_check(due) == "due now"
    assert next_check(done) == ""


def test_the_task_page_of_a_finished_task_plans_no_check(signed_in, owner):
    task = make_task(
        owner,
        "done",
        status=Status.COMPLETED,
        progress=100,
        last_polled_at=timezone.now(),
        next_poll_at=timezone.now() - timedelta(minutes=5),
    )
    html = signed_in.get(f"/tasks/{task.pk}/").content.decode()
    assert "Last checked</dt><dd><time" in html
    assert "next check" not in html


def test_the_task_page_says_when_it_was_checked_after_a_check(signed_in, owner):
    """Not "Last checked: not yet; next check in 1 min" once the worker has checked it: the
    page's refresh answers with the new time (the token follows last_polled_at)."""
    task = make_task(
        owner, "checked", status=Status.PROCESSING, next_poll_at=timezone.now() + timedelta(minutes=1)
    )
    page = signed_in.get(f"/tasks/{task.pk}/").content.decode()
    assert "not yet" in page
    token = task.live_token()
    VideoTask.objects.filter(pk=task.pk).update(
        last_polled_at=timezone.now(), next_poll_at=timezone.now() + timedelta(seconds=20)
    )
    fragment = signed_in.get(f"/tasks/{task.pk}/", {"token": token}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert "not yet" not in html and "just now</time>" in html
    assert ">in 19 s</time>" in html or ">in 20 s</time>" in html


def test_the_banner_speaks_to_people_not_to_the_code(signed_in, owner):
    html = signed_in.get("/").content.decode()
    assert "No worker is checking tasks yet" in html
    assert "No worker has polled yet" not in html
