"""At phone width (390 x 844): the board's forms fold behind their buttons so tasks show on
the first screen, and a task page with a long failure reason fits without sideways scrolling."""

from __future__ import annotations

import os
import shutil

from playwright.sync_api import Page, expect

from tests.browser.test_screenshot import DOCS_IMAGE, build_dashboard, png_size
from videos.models import Status, TaskEvent, VideoTask

PHONE = {"width": 390, "height": 844}
LONG_REASON = (
    "The provider rejected the request: "
    + "input_image_dimensions_must_match_the_requested_output_size_exactly_1280x720 " * 3
    + "(request id req_8f1c2a9e4d08190b3a7c5e1f2d4b6a8c0e9f7d5b3a1c9e7f5d3b1a9c7e5f3d1b9)"
)


def scroll_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_board_shows_tasks_on_the_first_screen(login, owner, page):
    build_dashboard(owner)
    page.set_viewport_size(PHONE)
    login("owner", "owner-password-1")
    expect(page.locator("#task-rows tr.task")).to_have_count(8)

    # The track form is folded behind its button; the new-video form too.
    track = page.locator("#track-fold")
    expect(track.locator("summary")).to_be_visible()
    expect(page.locator("#id_task_ids")).to_be_hidden()
    expect(page.locator("#create-panel")).not_to_have_attribute("open", "")
    first = page.locator("#task-rows tr.task").first
    top = first.evaluate("row => row.getBoundingClientRect().top")
    assert top < PHONE["height"] - 100, f"the first task starts at {top} px"
    assert scroll_width(page) <= PHONE["width"]

    # One tap opens the form, and it works as on a desktop.
    track.locator("summary").click()
    expect(page.locator("#id_task_ids")).to_be_visible()
    assert scroll_width(page) <= PHONE["width"]


def test_a_task_page_with_a_long_failure_reason_fits(login, owner, page):
    task = VideoTask.objects.create(
        owner=owner,
        task_id="video_68f1a0d41e7481909c5b3a1c9e7f5d3b1a9c7e5f3d1b9",
        label="Logo sting, a label long enough to wrap on a phone screen",
        status=Status.FAILED,
        progress=35,
        error_code="invalid_request_error_with_a_long_code",
        error_message=LONG_REASON,
    )
    TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.TRACKED, status=Status.PENDING)
    TaskEvent.objects.create(
        task=task,
        kind=TaskEvent.Kind.STATUS,
        previous_status=Status.PROCESSING,
        status=Status.FAILED,
        progress=35,
        message=LONG_REASON[:500],
    )
    page.set_viewport_size(PHONE)
    login("owner", "owner-password-1")
    page.goto(page.url.rstrip("/") + f"/tasks/{task.pk}/")
    expect(page.locator("#task-detail")).to_be_visible()
    assert scroll_width(page) <= PHONE["width"], scroll_width(page)
    # The timeline's note (where the reason is) is on the screen, whole, not cut off.
    note = page.locator("table.timeline td", has_text="req_8f1c2a9e4d08").last
    box = note.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box

    # The board with that task fits too.
    page.goto(page.url.split("/tasks/")[0] + "/")
    expect(page.locator(f"#task-{task.pk}")).to_be_visible()
    assert scroll_width(page) <= PHONE["width"], scroll_width(page)


def test_phone_screenshot(login, owner, page, tmp_path):
    """The README's phone picture: the first screen of the board (UPDATE_SCREENSHOTS=1 writes
    docs/dashboard-phone.png, as test_screenshot does for the desktop one)."""
    build_dashboard(owner)
    page.set_viewport_size(PHONE)
    login("owner", "owner-password-1")
    expect(page.locator("#task-rows tr.task")).to_have_count(8)
    expect(page.locator(".worker-ok")).to_be_visible()
    page.evaluate("document.fonts.ready.then(() => true)")
    page.wait_for_load_state("networkidle")
    shot = tmp_path / "dashboard-phone.png"
    page.screenshot(path=str(shot), scale="css")
    data = shot.read_bytes()
    assert png_size(data) == (PHONE["width"], PHONE["height"])
    assert len(data) > 20_000, len(data)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, DOCS_IMAGE.with_name("dashboard-phone.png"))
