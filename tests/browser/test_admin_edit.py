"""An operator's edit in the admin reaches a dashboard that is already open, in a real Chromium:
the dashboard picks it up through its htmx refresh, without a reload, and stops asking once
the edit leaves no shown task running. Waits are on conditions: the page's refresh answers."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, Page, Response, expect

from videos.models import Status, VideoTask

# Three refresh periods: long enough for a busy CI machine, short enough to fail fast.
LIVE_TIMEOUT = 10_000


def is_live_answer(response: Response) -> bool:
    return "/live/" in response.url  # a board's refresh, /w/<slug>/live/


def admin_page(browser: Browser, live_url: str) -> Page:
    """A second browser, signed in to the admin as an operator."""
    get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-1")
    context = browser.new_context()
    context.set_default_timeout(LIVE_TIMEOUT)
    page = context.new_page()
    page.goto(f"{live_url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", "ops-password-1")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    return page


def edit(page: Page, live_url: str, task: VideoTask, *, status: str | None = None, progress: int) -> None:
    """Change a task's status and progress through the admin's change form, as an operator does."""
    page.goto(f"{live_url}/admin/videos/videotask/{task.pk}/change/")
    if status is not None:
        page.select_option("select[name=status]", status)
    page.fill("input[name=progress]", str(progress))
    page.click("input[name=_save]")
    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")


def test_an_admin_edit_shows_on_the_open_dashboard_and_stops_its_polling(
    login, owner, browser, live_url, assert_no_console_errors
):
    first = VideoTask.objects.create(
        owner=owner, task_id="video_first", status=Status.PROCESSING, progress=20
    )
    second = VideoTask.objects.create(
        owner=owner, task_id="video_second", status=Status.PROCESSING, progress=10
    )
    ops = admin_page(browser, live_url)
    page = login("owner", "owner-password-1")
    first_row, second_row = page.locator(f"#task-{first.pk}"), page.locator(f"#task-{second.pk}")
    expect(first_row.locator(".pct")).to_have_text("20%")
    # A full reload would drop this; an htmx swap keeps it.
    page.evaluate("window.__noReload = 1")

    edit(ops, live_url, first, progress=70)
    expect(first_row.locator(".pct")).to_have_text("70%", timeout=LIVE_TIMEOUT)
    expect(first_row.locator("progress")).to_have_attribute("value", "70")

    edit(ops, live_url, first, status=Status.COMPLETED, progress=100)
    expect(first_row.locator(".badge")).to_have_text("Completed", timeout=LIVE_TIMEOUT)
    # The second task still runs: the page keeps asking.
    expect(page.locator("#live")).to_have_attribute("data-live", "")

    # The edit that leaves nothing running is answered with htmx's "stop polling" (286).
    with page.expect_response(lambda r: is_live_answer(r) and r.status == 286, timeout=LIVE_TIMEOUT):
        edit(ops, live_url, second, status=Status.FAILED, progress=10)
    expect(second_row.locator(".badge")).to_have_text("Failed")
    expect(page.locator("#live[data-live]")).to_have_count(0)
    expect(page.locator("#live")).not_to_have_attribute("hx-trigger", re.compile(".*"))
    assert page.evaluate("window.__noReload") == 1
    ops.context.close()
    assert_no_console_errors(page)
