"""Pasting a video's address and a line of its JSON into "Track tasks" in a real Chromium:
the panel shows the IDs read from them, the board gains exactly those rows, and Undo takes
them off again without a reload."""

from __future__ import annotations

from playwright.sync_api import expect

from videos.models import VideoTask


def test_a_pasted_url_and_json_line_are_tracked_by_their_ids_and_undone(
    login, owner, assert_no_console_errors
):
    page = login("owner", "owner-password-1")
    page.evaluate("window.__noReload = 1")
    page.fill(
        "#id_task_ids",
        "https://gateway.example.com/v1/videos/video_from_url/content?variant=thumbnail  Harbour\n"
        '    "id": "video_from_json",\n'
        "please check this one\n",
    )
    page.click("#track-panel button[type=submit]")

    result = page.locator(".track-result")
    read = result.locator(".track-read li")
    expect(read).to_have_count(2)
    expect(read.nth(0)).to_contain_text("video_from_url (from a URL): tracked")
    expect(read.nth(1)).to_contain_text("video_from_json (from JSON): tracked")
    expect(result.locator(".form-errors")).to_contain_text(
        "Line 3 ('please check this one'): this looks like a sentence"
    )
    rows = page.locator("#task-rows tr.task")
    expect(rows).to_have_count(2)
    assert set(VideoTask.objects.values_list("task_id", flat=True)) == {"video_from_url", "video_from_json"}
    assert VideoTask.objects.get(task_id="video_from_url").label == "Harbour"

    result.locator("button.undo").click()
    expect(page.locator(".track-result")).to_contain_text("Undone: stopped tracking 2 task(s) just added")
    expect(rows).to_have_count(0)
    assert not VideoTask.objects.exists()
    # The same page, swapped in place: no reload, and nothing logged an error.
    assert page.evaluate("window.__noReload") == 1
    assert_no_console_errors(page)
