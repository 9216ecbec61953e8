"""The board's tab title and opt-in desktop notifications in a real Chromium.

The title counts the running tasks shown and follows each live refresh; while the tab is
hidden a finished task flags it; a person who clicked "Notify me" gets a desktop
notification for their own tasks that finish while the tab is hidden, and for nobody
else's. Task states change through the ORM, which bumps the board's token as the worker
does. The board's refresh period is scaled down to 1 s (views.LIVE_EVERY, read at each
request by the live server's thread), so a hidden tab's slower refresh (one tick in four)
comes within seconds. Waits are on conditions, never fixed sleeps.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.pages import make_task
from videos import views
from videos.models import Status, VideoTask

# A hidden tab refreshes every fourth 1-s tick: twice that, plus room for a busy machine.
HIDDEN_TIMEOUT = 12_000
LIVE_TIMEOUT = 8_000
PERSONAL = "Your video tasks · Video tasks"

# Playwright's init script runs before the page's own scripts (and is not subject to its
# CSP): it wraps the real Notification so the browser's permission and requestPermission
# still decide, and records what the page shows and when it asks.
RECORD_NOTIFICATIONS = """(() => {
  const Real = window.Notification;
  window.__shown = [];
  window.__asked = 0;
  function Recorder(title, options) {
    window.__shown.push({title: title, body: (options || {}).body});
  }
  Object.defineProperty(Recorder, "permission", {get: () => Real.permission});
  Recorder.requestPermission = function () {
    window.__asked += 1;
    return Real.requestPermission.apply(Real, arguments);
  };
  window.Notification = Recorder;
})();"""


@pytest.fixture(autouse=True)
def fast_refresh(monkeypatch) -> None:
    monkeypatch.setattr(views, "LIVE_EVERY", 1)


def running(owner, task_id: str, **fields) -> VideoTask:
    fields.setdefault("status", Status.PROCESSING)
    return make_task(owner, task_id, progress=30, **fields)


def finish(task: VideoTask, status: str = Status.COMPLETED) -> None:
    # QuerySet.update bumps changed_at and the workspace's token: the board's next refresh
    # sends the row, as after a poller pass.
    VideoTask.objects.filter(pk=task.pk).update(status=status, progress=100)


def status_of(page: Page, task: VideoTask) -> Locator:
    """The row's status cell, whose data-status the page's script reads."""
    return page.locator(f"#task-{task.pk} [data-status]")


def hide_tab(page: Page, hidden: bool) -> None:
    """Play the browser hiding or showing the tab; headless Chromium never does it itself."""
    page.evaluate(
        """(hidden) => {
            Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
            Object.defineProperty(document, "visibilityState",
                {configurable: true, get: () => (hidden ? "hidden" : "visible")});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def test_the_title_counts_running_tasks_and_follows_each_refresh(login, owner, assert_no_console_errors):
    first = running(owner, "video_run_1")
    second = running(owner, "video_run_2", status=Status.PENDING)
    make_task(owner, "video_done", status=Status.COMPLETED, progress=100)

    page = login("owner", "owner-password-1")
    expect(page).to_have_title(f"(2 running) {PERSONAL}")

    finish(first)
    expect(status_of(page, first)).to_have_attribute("data-status", "completed", timeout=LIVE_TIMEOUT)
    # Seen with the tab in view: counted down, no news flag.
    expect(page).to_have_title(f"(1 running) {PERSONAL}")

    finish(second, Status.FAILED)
    expect(page).to_have_title(PERSONAL, timeout=LIVE_TIMEOUT)
    assert_no_console_errors(page)


def test_a_hidden_tab_flags_news_until_it_is_seen(login, owner, assert_no_console_errors):
    done_later = running(owner, "video_hidden_1")
    running(owner, "video_hidden_2")
    page = login("owner", "owner-password-1")
    expect(page).to_have_title(f"(2 running) {PERSONAL}")

    hide_tab(page, True)
    finish(done_later)
    expect(page).to_have_title(f"\u2022 (1 running) {PERSONAL}", timeout=HIDDEN_TIMEOUT)

    hide_tab(page, False)
    expect(page).to_have_title(f"(1 running) {PERSONAL}")
    assert_no_console_errors(page)


def test_notifications_are_opt_in_and_only_for_my_own_tasks(
    page, login, live_url, owner, teammate, team, assert_no_console_errors
):
    mine = running(owner, "video_mine", label="Harbour at dawn", workspace=team)
    mine_failing = running(owner, "video_mine_failing", workspace=team)
    theirs = running(teammate, "video_theirs", label="Teammate's cut", workspace=team)
    # Already finished when the page loads: never a notification, whatever comes later.
    make_task(owner, "video_old", status=Status.COMPLETED, progress=100, workspace=team)
    page.context.grant_permissions(["notifications"], origin=live_url)
    page.context.add_init_script(RECORD_NOTIFICATIONS)

    login("owner", "owner-password-1")
    page.goto(f"{live_url}/w/team/")
    toggle = page.locator("#notify-toggle")
    expect(toggle).to_have_text("Notify me when my videos finish")
    assert page.evaluate("window.__asked") == 0, "the page asked for permission on load"

    toggle.click()
    expect(toggle).to_have_text("Stop notifying me")
    expect(page.locator("#notify-state")).to_contain_text("On:")
    assert page.evaluate("window.__asked") == 1

    hide_tab(page, True)
    for task in (mine, theirs):
        finish(task)
    finish(mine_failing, Status.FAILED)
    for task in (mine, theirs, mine_failing):
        expect(status_of(page, task)).not_to_have_attribute(
            "data-status", "processing", timeout=HIDDEN_TIMEOUT
        )
    shown = page.evaluate("window.__shown")
    assert sorted(shown, key=lambda notice: notice["title"]) == [
        {"title": "Video failed", "body": "video_mine_failing"},
        {"title": "Video finished", "body": "Harbour at dawn"},
    ]
    hide_tab(page, False)

    # Remembered by this browser: a new page starts on, without asking again.
    page.reload()
    expect(toggle).to_have_text("Stop notifying me")
    assert page.evaluate("window.__asked") == 0
    toggle.click()
    expect(toggle).to_have_text("Notify me when my videos finish")
    assert page.evaluate("localStorage.getItem('videos.notify-finished')") is None
    assert_no_console_errors(page)


def test_a_refused_permission_is_said_and_nothing_is_turned_on(page, login, live_url, owner, team):
    running(owner, "video_refused", workspace=team)
    page.context.add_init_script(RECORD_NOTIFICATIONS)
    login("owner", "owner-password-1")
    page.goto(f"{live_url}/w/team/")

    page.click("#notify-toggle")
    expect(page.locator("#notify-state")).to_contain_text("blocks notifications")
    expect(page.locator("#notify-toggle")).to_have_text("Notify me when my videos finish")
    assert page.evaluate("localStorage.getItem('videos.notify-finished')") is None


def test_without_javascript_the_button_stays_hidden(browser, live_url, owner, team):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live_url}/accounts/login/")
        page.fill("input[name=username]", "owner")
        page.fill("input[name=password]", "owner-password-1")
        page.click("form button[type=submit]")
        page.wait_for_url(f"{live_url}/")
        page.goto(f"{live_url}/w/team/")
        expect(page.locator("h1")).to_have_text("Team")
        expect(page.locator("#notify-toggle")).to_be_hidden()
    finally:
        context.close()
