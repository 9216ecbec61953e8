"""A shared board in a real Chromium: a task one member tracks appears on a teammate's open
board without a reload, with who added it.

The teammate's board starts empty, so nothing on it runs: only the shared board's idle
refresh (views.IDLE_EVERY) can bring the news. Waits are on conditions, never fixed sleeps.
"""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from videos.views import IDLE_EVERY

# Two idle refresh periods: long enough for a busy CI machine, short enough to fail fast.
IDLE_TIMEOUT = 2 * IDLE_EVERY * 1000 + 5_000


def second_browser(browser: Browser, live_url: str, username: str, password: str) -> tuple[Page, list[str]]:
    """Another person's browser (a context of its own: its own cookies), signed in."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{live_url}/")
    return page, errors


def test_a_task_tracked_by_the_owner_appears_live_on_the_teammates_board(
    login, browser, live_url, owner, teammate, team, assert_no_console_errors
):
    board = login("teammate", "teammate-password-1")
    board.goto(f"{live_url}/w/team/")
    expect(board.locator("h1")).to_have_text("Team")
    expect(board.locator("#task-rows tr.task")).to_have_count(0)
    # The header says where we are; a full reload would drop this marker, an htmx swap keeps it.
    expect(board.locator(".switcher a[aria-current]")).to_have_text("Team")
    board.evaluate("window.__noReload = 1")

    owners_page, owners_errors = second_browser(browser, live_url, "owner", "owner-password-1")
    owners_page.goto(f"{live_url}/w/team/")
    owners_page.fill("textarea[name=task_ids]", "video_from_the_owner  Harbour at dawn")
    owners_page.click("#track-panel button[type=submit]")
    expect(owners_page.locator(".track-result")).to_contain_text("Now tracking 1 task")

    row = board.locator("#task-rows tr.task")
    expect(row).to_have_count(1, timeout=IDLE_TIMEOUT)
    expect(row).to_contain_text("Harbour at dawn")
    expect(row).to_contain_text("video_from_the_owner")
    expect(row.locator("[data-label='Added by']")).to_have_text("owner")
    expect(board.locator("#counts a.count").first.locator("strong")).to_have_text("1")
    assert board.evaluate("window.__noReload") == 1
    assert owners_errors == []
    owners_page.context.close()
    assert_no_console_errors(board)
