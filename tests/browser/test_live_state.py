"""Honest live state in a real Chromium (issue 12 §6 to 8): the board says when its refresh
fails and retries with backoff, says "Signed out" when the session is gone, flags a row whose
next check is overdue, briefly marks rows that changed and announces a finish to screen
readers. The live refresh is scaled down to 1 s (views.LIVE_EVERY; the backoff starts at the
page's own tick, so 1 s, 2 s, 4 s here). Failures come from Playwright's page.route; task
changes through the ORM, which bumps the board's token as the worker does."""

from __future__ import annotations

import itertools
import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, Route, expect

from tests.pages import make_task
from videos import views, worker_status
from videos.models import Status, VideoTask

LIVE_TIMEOUT = 8_000
LIVE_URL = re.compile(r"/live/\?")


@pytest.fixture(autouse=True)
def fast_refresh(monkeypatch) -> None:
    monkeypatch.setattr(views, "LIVE_EVERY", 1)


def running(owner, task_id: str, **fields) -> VideoTask:
    return make_task(owner, task_id, status=Status.PROCESSING, progress=30, **fields)


def notice(page: Page):
    return page.locator("#connection-notice")


def expected_errors_only(page: Page, *marks: str) -> None:
    """The failed requests this test provoked log console errors; anything else is a bug."""
    errors = page.console_errors  # type: ignore[attr-defined]
    unexpected = [e for e in errors if not any(mark in e for mark in marks)]
    assert not unexpected, unexpected
    errors.clear()


def test_a_failing_refresh_is_said_retried_with_backoff_and_cleared(login, owner):
    task = running(owner, "video_conn", label="Harbour")
    page = login("owner", "owner-password-1")
    failed_at: list[float] = []

    def fail(route: Route) -> None:
        failed_at.append(time.monotonic())
        route.abort()

    page.route(LIVE_URL, fail)
    expect(notice(page)).to_have_text("Connection lost; retrying\u2026", timeout=LIVE_TIMEOUT)
    # Not polled every tick while failing: each wait doubles.
    deadline = time.monotonic() + 15
    while len(failed_at) < 4 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert len(failed_at) >= 4, failed_at
    gaps = [b - a for a, b in itertools.pairwise(failed_at)]
    assert gaps[1] > gaps[0] * 1.5 and gaps[2] > gaps[1] * 1.5, gaps

    # Back: the next retry succeeds, the notice goes and the news arrives.
    page.unroute(LIVE_URL)
    VideoTask.objects.filter(pk=task.pk).update(progress=70)
    expect(page.locator(f"#task-{task.pk} .pct")).to_have_text("70%", timeout=15_000)
    expect(notice(page)).to_have_count(0)
    expected_errors_only(page, "ERR_FAILED", "htmx:", "/live/")


def test_a_server_error_is_said_too(login, owner):
    running(owner, "video_500")
    page = login("owner", "owner-password-1")
    page.route(LIVE_URL, lambda route: route.fulfill(status=502, body="Bad gateway"))
    expect(notice(page)).to_have_text("Connection lost; retrying\u2026", timeout=LIVE_TIMEOUT)
    expected_errors_only(page, "502", "htmx:", "/live/")


def test_an_expired_session_says_signed_out_with_a_way_back(login, owner, live_url):
    running(owner, "video_session")
    page = login("owner", "owner-password-1")
    page.context.clear_cookies()
    expect(notice(page)).to_contain_text("Signed out", timeout=LIVE_TIMEOUT)
    link = notice(page).get_by_role("link", name="sign in again")
    expect(link).to_have_attribute("href", "/accounts/login/?next=%2F")
    # Not the login form swapped into the board.
    expect(page.locator("input[name=password]")).to_have_count(0)
    expected_errors_only(page, "401", "htmx:", "/live/", "/status/")
    link.click()
    page.wait_for_url(re.compile(r"/accounts/login/\?next="))


def test_a_changed_row_is_marked_briefly(login, owner):
    task = running(owner, "video_glow")
    other = running(owner, "video_still")
    page = login("owner", "owner-password-1")
    row = page.locator(f"#task-{task.pk}")
    VideoTask.objects.filter(pk=task.pk).update(progress=55)
    expect(row).to_have_class(re.compile(r"\bjust-changed\b"), timeout=LIVE_TIMEOUT)
    expect(page.locator(f"#task-{other.pk}")).not_to_have_class(re.compile(r"\bjust-changed\b"))
    expect(row).not_to_have_class(re.compile(r"\bjust-changed\b"), timeout=5_000)


def test_a_finish_is_announced_politely(login, owner):
    task = running(owner, "video_done", label="Harbour at dawn")
    running(owner, "video_other")
    page = login("owner", "owner-password-1")
    announcer = page.locator("#live-announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    VideoTask.objects.filter(pk=task.pk).update(status=Status.COMPLETED, progress=100)
    expect(announcer).to_have_text("Video finished: Harbour at dawn", timeout=LIVE_TIMEOUT)


def test_an_overdue_check_is_flagged_without_news_from_the_server(login, owner, monkeypatch):
    # A second of grace: the worker is "dead" from the moment the page loads.
    monkeypatch.setattr(worker_status, "OVERDUE_AFTER", timedelta(seconds=1))
    task = running(owner, "video_late", next_poll_at=timezone.now() + timedelta(seconds=2))
    page = login("owner", "owner-password-1")
    flag = page.locator(f"#task-{task.pk} .next-check")
    expect(flag).to_be_hidden()
    expect(flag).to_be_visible(timeout=LIVE_TIMEOUT)
    expect(flag).to_have_text("next check overdue")
