"""The task changelist fits a 1280 px laptop screen (and 1920) in a real Chromium: no
sideways scrolling of its table, and the error column on screen (issue 12, item 12)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from teams.models import Workspace
from videos.models import Status, VideoTask


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_task_changelist_fits_and_shows_the_error(
    page: Page, live_url, owner, width, assert_no_console_errors
):
    get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-1")
    # Worst cases for width: long IDs, labels, workspace names and errors.
    workspace = Workspace.objects.create(name="Marketing videos for the autumn campaign", slug="autumn")
    for i in range(5):
        VideoTask.objects.create(
            owner=owner,
            workspace=workspace,
            task_id=f"video_68d2f7a1c4e0819a8b3f{i:02d}e5d7c9b1a3f5e7d9c1b3a5",
            label="A corgi surfing a small wave at sunset, slow motion, golden light, 35 mm film",
            status=Status.FAILED,
            progress=37,
            error_code="moderation_blocked",
            error_message="Your request was blocked by our moderation system: it may violate the policy.",
        )
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_url}/admin/login/?next=/admin/videos/videotask/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", "ops-password-1")
    page.click("input[type=submit]")
    table = page.locator("#result_list")
    expect(table).to_be_visible()
    sizes = table.evaluate(
        "t => ({table: t.scrollWidth, box: t.parentElement.clientWidth,"
        " page: document.documentElement.scrollWidth, view: window.innerWidth})"
    )
    assert sizes["table"] <= sizes["box"], sizes
    assert sizes["page"] <= sizes["view"], sizes
    error = page.locator("#result_list td.field-error").first
    expect(error).to_contain_text("moderation_blocked")
    box = error.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width, box
    expect(page.locator("#result_list td.field-state").first).to_have_text("failed")
    assert_no_console_errors(page)
