"""A failed video started from the dashboard, in a real browser: its page shows what it was
started with and offers Retry, which starts one new video that links back to it; Duplicate
opens the create form filled in with the same settings."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from tests.fake_provider import video
from videos.client import VideoAPIClient
from videos.models import Status, Submission, VideoTask
from videos.submissions import VideoRequest, submit


def test_a_failed_video_is_retried_and_duplicated_from_its_page(
    login, live_url, owner, provider, settings, assert_no_console_errors
):
    settings.VIDEO_API_BASE_URL = provider.base_url
    settings.VIDEO_API_KEY = "sk-test"
    # Started the way the board's form starts one, then failed at the provider.
    provider.script("POST /videos", video("video_failed", "queued", 0))
    with VideoAPIClient(provider.base_url, "sk-test") as client:
        first = submit(
            owner, VideoRequest(prompt="A lighthouse in fog", model="veo-3", size="1280x720"), client
        )
    failed = first.task
    VideoTask.objects.filter(pk=failed.pk).update(
        status=Status.FAILED, error_message="Something went wrong, please retry."
    )

    page = login("owner", "owner-password-1")
    page.goto(f"{live_url}/tasks/{failed.pk}/")
    started = page.locator(".started-with")
    expect(started).to_contain_text("A lighthouse in fog")
    expect(started).to_contain_text("veo-3")
    expect(started).to_contain_text("1280x720")

    provider.script("POST /videos", video("video_retried", "queued", 0))
    page.get_by_role("button", name="Retry with the same settings").click()
    retried = Submission.objects.get(retry_of=failed)
    page.wait_for_url(f"{live_url}/tasks/{retried.task.pk}/")
    expect(page.locator(".retry-of")).to_have_text("Retry of video_failed.")
    creates = [seen for seen in provider.requests if seen.method == "POST"]
    assert len(creates) == 2 and json.loads(creates[1].body) == json.loads(creates[0].body)

    page.locator(".retry-of a").click()
    expect(page.locator(".retried")).to_contain_text("Retried as video_retried")
    expect(page.get_by_role("button", name="Retry with the same settings")).to_have_count(0)

    page.get_by_role("link", name="Start again / Duplicate").click()
    expect(page).to_have_url(re.compile(rf"/tasks/{failed.pk}/duplicate/$"))
    expect(page.locator("#id_prompt")).to_have_value("A lighthouse in fog")
    expect(page.locator("#id_model")).to_have_value("veo-3")
    expect(page.locator("#id_size")).to_have_value("1280x720")
    assert_no_console_errors(page)
