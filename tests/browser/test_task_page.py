"""A task's own page in a real Chromium: live fields and timeline, the player, and its actions.

As on the dashboard, the task changes state through a real `Poller` pass against the
loopback fake provider, and the open page must follow through its htmx refresh.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Locator, Page, Request, Route, expect

from tests.fake_provider import Reply, video
from videos import keep
from videos.models import KeepState, Status, VideoTask
from videos.polling import Poller

LIVE_TIMEOUT = 10_000  # three refresh periods of 3 s
CDN = "https://cdn.example"
SAMPLE_VIDEO = Path(settings.BASE_DIR) / "sandbox" / "static" / "sandbox" / "sample.mp4"


def poll(poller: Poller, task: VideoTask) -> None:
    """One real poller pass over `task` (made due first: a pass only claims due tasks)."""
    VideoTask.objects.filter(pk=task.pk).update(next_poll_at=None)
    report = poller.run_pass()
    assert report.polled == 1, f"the pass did not poll the task: {report}"


def track(owner, task_id: str, label: str = "") -> VideoTask:
    # Through the model's own entry point, so the timeline starts with its "Tracked" event.
    created, _ = VideoTask.objects.track(owner, [(task_id, label)])
    return created[0]


def field(page: Page, name: str) -> Locator:
    """The <dd> of the task page's field called `name`."""
    return page.locator("#task-detail dl.fields dt", has_text=name).locator("xpath=following-sibling::dd[1]")


def serve_sample_video(route: Route) -> None:
    # The player loads its src: answer from disk so nothing leaves the machine.
    route.fulfill(status=200, content_type="video/mp4", body=SAMPLE_VIDEO.read_bytes())


def test_the_page_follows_the_task_to_completion_then_stops_polling(
    login, owner, provider, poller, live_url, assert_no_console_errors, settings
):
    # No copy to wait for (that has its own test below): the page is settled on completion.
    settings.VIDEO_KEEP = False
    task = track(owner, "video_detail", "Product demo")
    # Already known as queued, so the first poll changes nothing but "Last checked".
    VideoTask.objects.filter(pk=task.pk).update(raw_status="queued")
    page = login("owner", "owner-password-1")
    page.route(f"{CDN}/**", serve_sample_video)
    page.goto(f"{live_url}/tasks/{task.pk}/")
    detail = page.locator("#task-detail")
    timeline = detail.locator("table.timeline tbody tr")
    expect(page.locator("h1")).to_have_text("Product demo")
    expect(detail.locator(".badge")).to_have_text("Pending")
    expect(field(page, "Task ID").locator("code")).to_have_text("video_detail")
    expect(field(page, "Last checked")).to_have_text(re.compile(r"^not yet"))
    expect(timeline).to_have_count(1)
    expect(timeline.first).to_contain_text("Tracked")
    page.evaluate("window.__noReload = 1")

    # Still queued: only "Last checked" changes, and the page must still show it.
    provider.script("video_detail", video("video_detail", "queued", 0))
    poll(poller, task)
    expect(field(page, "Last checked").locator("time").first).to_have_text("just now", timeout=LIVE_TIMEOUT)
    expect(field(page, "Provider status")).to_have_text("queued")
    expect(detail.locator(".badge")).to_have_text("Pending")
    expect(field(page, "Requests spent")).to_have_text("1")

    provider.script("video_detail", video("video_detail", "in_progress", 40, model="sora-2", seconds="8"))
    poll(poller, task)
    expect(detail.locator(".badge")).to_have_text("Processing", timeout=LIVE_TIMEOUT)
    expect(detail.locator(".pct")).to_have_text("40%")
    expect(field(page, "Model")).to_have_text("sora-2")
    expect(field(page, "Duration")).to_have_text("8 s")
    expect(timeline).to_have_count(2)
    expect(timeline.nth(1)).to_contain_text("pending → processing")
    expect(detail.locator("video")).to_have_count(0)

    url = f"{CDN}/videos/video_detail.mp4?sig=abc"
    expires = int((timezone.now() + timedelta(hours=1)).timestamp())
    provider.script("video_detail", video("video_detail", "completed", 100, url=url, expires_at=expires))
    poll(poller, task)
    expect(detail.locator(".badge")).to_have_text("Completed", timeout=LIVE_TIMEOUT)
    expect(timeline).to_have_count(3)
    expect(timeline.nth(2)).to_contain_text("processing → completed")
    expect(detail.locator("video.player")).to_have_attribute("src", url)
    expect(detail.locator("a.download")).to_have_attribute("href", f"/tasks/{task.pk}/download/")
    # The player really loads it: the CSP's media-src admits the provider's https CDN.
    # (Not wait_for_function: its polling evaluates a string, which the page's CSP forbids.)
    loaded = detail.locator("video.player").evaluate(
        """(video) => new Promise((resolve) => {
            if (video.readyState >= 1) return resolve(true);
            video.addEventListener("loadedmetadata", () => resolve(true), {once: true});
            video.addEventListener("error", () => resolve(false), {once: true});
            setTimeout(() => resolve(false), 5000);
        })"""
    )
    assert loaded, "the player could not load the video"
    expect(field(page, "Finished")).not_to_have_text("—")
    assert page.evaluate("window.__noReload") == 1

    # Finished: the page must stop asking.
    expect(page.locator("#task-detail[data-live]")).to_have_count(0)
    asked: list[str] = []

    def on_request(request: Request) -> None:
        if request.url.startswith(f"{live_url}/tasks/{task.pk}/"):
            asked.append(request.url)

    page.on("request", on_request)
    page.wait_for_timeout(4_000)  # over one refresh period (3 s)
    assert asked == [], "the task page kept polling a finished task"
    assert_no_console_errors(page)


def test_refresh_now_asks_the_worker_and_makes_the_task_due(login, owner, live_url, assert_no_console_errors):
    task = track(owner, "video_refresh", "Refresh me")
    # Checked a moment ago and not due for a while: the button must change that.
    VideoTask.objects.filter(pk=task.pk).update(
        status=Status.PROCESSING, progress=30, next_poll_at=timezone.now() + timedelta(minutes=10)
    )
    assert not VideoTask.objects.due().filter(pk=task.pk).exists()
    page = login("owner", "owner-password-1")
    page.goto(f"{live_url}/tasks/{task.pk}/")
    page.evaluate("window.__noReload = 1")

    page.get_by_role("button", name="Refresh now").click()

    # No worker runs beside the test server: the person is told so, and the task is due all the same.
    expect(page.locator("#task-detail .messages")).to_have_text(
        "The worker that checks tasks is not running, so this task cannot be checked now; "
        "it will be checked as soon as the worker is back."
    )
    assert VideoTask.objects.due().filter(pk=task.pk).exists()
    # The swapped-in fragment keeps the page live.
    expect(page.locator("#task-detail")).to_have_attribute("data-live", "")
    assert page.evaluate("window.__noReload") == 1
    assert_no_console_errors(page)


def test_stop_tracking_asks_first_and_only_removes_on_yes(login, owner, live_url, assert_no_console_errors):
    task = track(owner, "video_stop", "Stop me")
    other = track(owner, "video_keep", "Keep me")
    page = login("owner", "owner-password-1")
    page.goto(f"{live_url}/tasks/{task.pk}/")
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    stop = page.get_by_role("button", name="Stop tracking")

    dialogs: list[str] = []

    def dismiss(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    stop.click()
    expect(stop).to_be_enabled()
    page.wait_for_timeout(500)  # proving nothing is sent after "no" takes a moment
    assert dialogs and dialogs[0].startswith("Stop tracking this task?")
    assert posts == []
    assert page.url == f"{live_url}/tasks/{task.pk}/"
    assert VideoTask.objects.filter(pk=task.pk).exists()

    page.once("dialog", lambda dialog: dialog.accept())
    stop.click()
    page.wait_for_url(f"{live_url}/w/owner/")  # the task's board, by its slug
    expect(page.locator(".messages")).to_contain_text("Stopped tracking Stop me.")
    expect(page.locator(f"#task-{task.pk}")).to_have_count(0)
    expect(page.locator(f"#task-{other.pk}")).to_be_visible()
    assert not VideoTask.objects.filter(pk=task.pk).exists()
    assert VideoTask.objects.filter(pk=other.pk).exists()
    assert_no_console_errors(page)


def test_another_users_task_is_a_404(login, owner, outsider, live_url):
    theirs = track(outsider, "video_not_yours", "Outsider's secret cut")
    page = login("owner", "owner-password-1")

    response = page.goto(f"{live_url}/tasks/{theirs.pk}/")

    assert response is not None and response.status == 404
    expect(page.locator("body")).not_to_contain_text("Outsider's secret cut")
    expect(page.locator("body")).not_to_contain_text("video_not_yours")
    # Chromium logs the 404 itself; that one is the point here, anything else is not.
    errors = list(page.console_errors)
    page.console_errors.clear()
    assert all("status of 404" in error for error in errors), errors


def test_the_page_keeps_watching_until_the_copy_is_kept(
    login, owner, provider, live_url, settings, assert_no_console_errors
):
    settings.VIDEO_API_BASE_URL = provider.base_url
    settings.VIDEO_API_KEY = "sk-test"
    task = VideoTask.objects.create(
        owner=owner,
        task_id="video_keeping",
        label="Keeping",
        status=Status.COMPLETED,
        progress=100,
        keep_state=KeepState.WAITING,
        next_keep_at=timezone.now(),
    )
    # The player streams through the dashboard meanwhile; the same bytes are then kept
    # (the fake provider repeats its last answer for every variant).
    provider.script(
        "GET /videos/video_keeping/content",
        Reply(200, body=SAMPLE_VIDEO.read_bytes(), headers={"Content-Type": "video/mp4"}),
    )
    page = login("owner", "owner-password-1")
    page.goto(f"{live_url}/tasks/{task.pk}/")
    detail = page.locator("#task-detail")
    expect(detail).to_contain_text("waiting to copy")
    expect(detail).to_have_attribute("data-live", "")
    assert keep.run() == 1
    expect(detail.locator(".ok")).to_contain_text("kept copy", timeout=10_000)
    expect(page.locator("#task-detail")).not_to_have_attribute("data-live", "")
