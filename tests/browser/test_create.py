"""Starting a video from the dashboard's form in a real browser: it appears at once and
follows the provider to completion without a reload."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.test_dashboard import LIVE_TIMEOUT, poll
from tests.fake_provider import Reply, video
from videos.models import Status, VideoTask


def test_a_video_started_from_the_form_appears_and_progresses(
    login,
    owner,
    provider,
    poller,
    settings,
    assert_no_console_errors,
):
    settings.VIDEO_API_BASE_URL = provider.base_url
    settings.VIDEO_API_KEY = "sk-test"
    settings.VIDEO_MODELS = ["veo-3", "kling-v2"]
    settings.VIDEO_SIZES = ["1280x720", "720x1280"]
    settings.VIDEO_SECONDS = ["4", "8"]
    provider.script("POST /videos", video("video_from_form", "queued", 0, model="kling-v2", size="720x1280"))

    page = login("owner", "owner-password-1")
    page.evaluate("window.__noReload = 1")
    page.locator("#create-panel summary").click()
    page.fill("#id_prompt", "A paper boat in the rain")
    page.select_option("#id_model", "kling-v2")
    page.select_option("#id_size", "720x1280")
    page.select_option("#id_seconds", "8")
    page.get_by_role("button", name="Start video").click()

    expect(page.locator("#create-panel .create-result")).to_contain_text("Video started: now tracking")
    task = VideoTask.objects.get(owner=owner, task_id="video_from_form")
    row = page.locator(f"#task-{task.pk}")
    expect(row).to_contain_text("A paper boat in the rain")
    expect(row.locator(".badge")).to_have_text("Pending")
    (sent,) = [seen for seen in provider.requests if seen.method == "POST"]
    assert json.loads(sent.body) == {
        "prompt": "A paper boat in the rain",
        "model": "kling-v2",
        "seconds": "8",
        "size": "720x1280",
    }
    # The form is ready for the next one.
    expect(page.locator("#id_prompt")).to_have_value("")

    provider.script("video_from_form", video("video_from_form", "in_progress", 45))
    poll(poller, task)
    expect(row.locator(".badge")).to_have_text("Processing", timeout=LIVE_TIMEOUT)
    expect(row.locator(".pct")).to_have_text("45%")
    provider.script("video_from_form", video("video_from_form", "completed", 100))
    poll(poller, task)
    expect(row.locator(".badge")).to_have_text("Completed", timeout=LIVE_TIMEOUT)
    expect(row.locator("a.download")).to_have_attribute("href", f"/tasks/{task.pk}/download/")
    assert page.evaluate("window.__noReload") == 1
    assert VideoTask.objects.get(pk=task.pk).status == Status.COMPLETED


def test_a_refused_create_is_explained_next_to_the_form(
    login, owner, provider, settings, assert_no_console_errors
):
    settings.VIDEO_API_BASE_URL = provider.base_url
    settings.VIDEO_API_KEY = "sk-test"
    provider.script(
        "POST /videos", Reply(400, {"error": {"message": "Invalid size 123x4.", "code": "invalid_value"}})
    )
    page = login("owner", "owner-password-1")
    page.locator("#create-panel summary").click()
    page.fill("#id_prompt", "Anything")
    page.fill("#id_model", "some-model")
    page.get_by_role("button", name="Start video").click()
    expect(page.locator("#create-panel .create-result")).to_contain_text(
        "The provider refused the request: Invalid size 123x4."
    )
    assert not VideoTask.objects.exists()
