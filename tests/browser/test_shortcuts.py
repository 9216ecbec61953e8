"""Keyboard shortcuts (static/js/shortcuts.js): "/" search, "j"/"k" move, Enter opens, "r"
refreshes, "?" lists them; none of them fire while typing in a field."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from videos.models import Status, VideoTask


def three_tasks(owner) -> list[VideoTask]:
    # Newest first on the board: c, b, a.
    return [
        VideoTask.objects.create(
            owner=owner, task_id=f"video_keys_{name}", label=f"Task {name}", status=Status.PENDING
        )
        for name in "abc"
    ]


def test_search_move_open_and_help(login, owner, live_url):
    a, b, c = three_tasks(owner)
    page = login("owner", "owner-password-1")
    expect(page.locator("#task-rows tr.task")).to_have_count(3)

    page.keyboard.press("/")
    search = page.locator("#filter-q")
    expect(search).to_be_focused()
    expect(search).to_have_value("")  # the "/" did not land in the box
    # Typing in a field is typing: "j" and "?" are letters there.
    page.keyboard.type("j?k")
    expect(search).to_have_value("j?k")
    expect(page.locator("tr.row-focus")).to_have_count(0)
    expect(page.locator("#shortcuts-dialog")).not_to_be_visible()
    search.fill("")
    search.blur()

    page.keyboard.press("j")
    expect(page.locator("tr.row-focus")).to_have_id(f"task-{c.pk}")
    expect(page.locator(f"#task-{c.pk} .task-name a")).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("j")  # stays on the last row
    expect(page.locator("tr.row-focus")).to_have_id(f"task-{a.pk}")
    page.keyboard.press("k")
    expect(page.locator("tr.row-focus")).to_have_id(f"task-{b.pk}")
    expect(page.locator("tr.row-focus")).to_have_count(1)

    page.keyboard.press("?")
    dialog = page.locator("#shortcuts-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Search the tasks")
    page.keyboard.press("Escape")
    expect(dialog).not_to_be_visible()

    # Enter opens the highlighted task (still highlighted after the dialog).
    expect(page.locator("tr.row-focus")).to_have_id(f"task-{b.pk}")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/tasks/{b.pk}/$"))


def test_r_refreshes_the_board_and_the_task(login, owner, live_url):
    (task, *_rest) = three_tasks(owner)
    page = login("owner", "owner-password-1")
    expect(page.locator("#live[data-live]")).to_have_count(1)
    # On the board with no row highlighted: the page's live refresh, at once.
    with page.expect_request(re.compile(r"/live/")):
        page.keyboard.press("r")

    page.goto(f"{live_url}/tasks/{task.pk}/")
    with page.expect_request(
        lambda request: request.method == "POST" and f"/tasks/{task.pk}/refresh/" in request.url
    ):
        page.keyboard.press("r")
    expect(page.locator("#task-detail .messages")).to_be_visible()
