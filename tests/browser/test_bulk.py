"""Bulk actions in the browser: tick two rows, Stop tracking, confirm the count, and only
those two are gone."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.pages import make_task
from videos.models import Status, VideoTask


def test_tick_two_rows_and_stop_tracking_them_after_the_confirmation(login, owner, assert_no_console_errors):
    tasks = [make_task(owner, f"video_bulk{i}", status=Status.PROCESSING) for i in range(3)]
    page = login("owner", "owner-password-1")
    expect(page.locator("#task-rows tr.task")).to_have_count(3)

    page.get_by_label("Select video_bulk0").check()
    page.get_by_label("Select video_bulk2").check()
    page.locator("#bulk-form").get_by_role("button", name="Stop tracking").click()

    expect(page.get_by_role("heading", name="Stop tracking 2 tasks?")).to_be_visible()
    assert VideoTask.objects.count() == 3  # nothing happens before the confirmation
    page.get_by_role("button", name="Stop tracking 2 tasks").click()

    expect(page.get_by_text("Stopped tracking 2 tasks.")).to_be_visible()
    expect(page.locator("#task-rows tr.task")).to_have_count(1)
    assert list(VideoTask.objects.values_list("pk", flat=True)) == [tasks[1].pk]
    assert_no_console_errors(page)


def test_select_all_on_the_page_ticks_every_row(login, owner):
    for i in range(3):
        make_task(owner, f"video_all{i}", status=Status.COMPLETED)
    page = login("owner", "owner-password-1")
    page.get_by_label("Select every task on this page").check()
    expect(page.locator('#task-rows input[name="pk"]:checked')).to_have_count(3)
    page.get_by_label("Select every task on this page").uncheck()
    expect(page.locator('#task-rows input[name="pk"]:checked')).to_have_count(0)
