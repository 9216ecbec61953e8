"""Row density on the board: compact rows keep a task on one line (about 40 px at 1280 px
wide, against 80-100 px stacked); the choice is the person's and survives a reload."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.test_screenshot import build_dashboard
from videos.models import Status, VideoTask

LONG_ID = "video_68f1c2a9e4d08190b3a7c5e1f2d4b6a8c0e9f7d5"


def twelve_tasks(owner) -> None:
    build_dashboard(owner)
    for n in range(3):
        VideoTask.objects.create(
            owner=owner, task_id=f"{LONG_ID}{n}", label="", status=Status.COMPLETED, progress=100
        )
    VideoTask.objects.create(
        owner=owner, task_id="kl-long-label", label="A very long label " * 6, status=Status.PENDING
    )


def row_heights(page: Page) -> list[float]:
    return page.eval_on_selector_all(
        "#task-rows tr.task", "rows => rows.map(r => r.getBoundingClientRect().height)"
    )


def table_height(page: Page) -> float:
    return page.eval_on_selector("table.tasks", "t => t.getBoundingClientRect().height")


def test_compact_rows_by_default_comfortable_on_request_and_remembered(login, owner):
    twelve_tasks(owner)
    page = login("owner", "owner-password-1")
    page.set_viewport_size({"width": 1280, "height": 900})
    expect(page.locator("#task-rows tr.task")).to_have_count(12)
    expect(page.locator("table.tasks")).to_have_class("tasks density-compact")

    compact = row_heights(page)
    assert max(compact) <= 48, compact
    # One line per row must not push the Link and Error columns off the side at 1280 px.
    widths = page.eval_on_selector(".table-wrap", "w => [w.scrollWidth, w.clientWidth]")
    assert widths[0] <= widths[1], widths
    # 12 tasks made a 1,850 px page; their table alone is now a fraction of that.
    assert table_height(page) < 700, table_height(page)

    # The shortened ID is whole where it matters: in its title (hover) and in the Copy button.
    row = page.locator("#task-rows tr.task", has=page.locator(f"a[title='{LONG_ID}0']"))
    assert row.locator("a.id-only code").evaluate(
        "c => c.scrollWidth > c.clientWidth || c.parentElement.scrollWidth > c.parentElement.clientWidth"
    )
    expect(row.locator("button.copy")).to_have_attribute("data-copy", f"{LONG_ID}0")

    page.get_by_role("button", name="Comfortable rows").click()
    expect(page.locator("table.tasks")).to_have_class("tasks density-comfortable")
    comfortable = row_heights(page)
    # The labelled rows stack label, ID and Copy again.
    assert max(comfortable) > 60, comfortable
    assert table_height(page) > table_height_compact_margin(compact), (table_height(page), compact)

    # Remembered: a reload, and a new visit to the board, keep it.
    page.reload()
    expect(page.locator("table.tasks")).to_have_class("tasks density-comfortable")
    page.get_by_role("button", name="Compact rows").click()
    expect(page.locator("table.tasks")).to_have_class("tasks density-compact")
    assert max(row_heights(page)) <= 48


def table_height_compact_margin(compact: list[float]) -> float:
    return sum(compact) * 1.2


def test_the_choice_is_per_person(login, owner, teammate, browser, live_url):
    twelve_tasks(owner)
    page = login("owner", "owner-password-1")
    page.get_by_role("button", name="Comfortable rows").click()
    expect(page.locator("table.tasks")).to_have_class("tasks density-comfortable")

    other = browser.new_context().new_page()
    try:
        other.goto(f"{live_url}/accounts/login/")
        other.fill("input[name=username]", "teammate")
        other.fill("input[name=password]", "teammate-password-1")
        other.click("form button[type=submit]")
        other.wait_for_url(f"{live_url}/")
        expect(other.locator("table.tasks")).to_have_class("tasks density-compact")
    finally:
        other.context.close()
