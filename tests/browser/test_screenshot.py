"""A screenshot of a realistic dashboard, for the README and for eyes during review.

Always written to pytest's tmp_path and checked to be a real picture; with
UPDATE_SCREENSHOTS=1 it also replaces docs/dashboard.png, so the published image is only
ever regenerated on purpose.
"""

from __future__ import annotations

import os
import shutil
import struct
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import expect

from videos.models import Status, TaskEvent, VideoTask, WorkerHeartbeat

DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
WIDTH = 1280
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# Task ID, label, "status progress", "model size seconds", minutes since it was tracked.
TASKS = [
    ("kl-9a7e3f21-6b04-4d2c", "Product spin, white background", "pending 0", "kling-v2 1080x1920 10", 0),
    ("veo_op_5b1d0c7e2a", "Coffee pour, macro", "processing 18", "veo-3 1920x1080 8", 1),
    ("video_68f1c2a9e4d08190b3", "Launch teaser, 16:9 master", "processing 72", "sora-2 1280x720 8", 3),
    ("sd-20251129-7f3a", "Character walk cycle", "processing 51", "seedance-1-pro 864x480 5", 6),
    ("video_68f1b7730c5c8190a1", "Beach at dusk, drone pass", "completed 100", "sora-2 1280x720 12", 14),
    ("veo_op_2c9e4a1f7d", "City timelapse, night", "completed 100", "veo-3 1920x1080 8", 42),
    ("video_68f1a0d41e7481909c", "Logo sting v2", "failed 35", "sora-2 1280x720 4", 55),
    ("kl-1c0b8e55-93aa-4f1e", "", "failed 0", "kling-v2 1920x1080 10", 95),
]
ERRORS = {
    "video_68f1a0d41e7481909c": ("moderation_blocked", "Your request was blocked by our moderation system."),
    "kl-1c0b8e55-93aa-4f1e": (
        "task_not_found",
        "The provider answered 3 times in a row that it does not know this task.",
    ),
}
LINK_LIFETIME = {
    "video_68f1b7730c5c8190a1": timedelta(hours=2, minutes=40),
    "veo_op_2c9e4a1f7d": timedelta(minutes=35),
}


def build_dashboard(owner) -> None:
    """Tasks as the worker would have left them, in every state."""
    now = timezone.now()
    for task_id, label, state, video, minutes_old in TASKS:
        status, progress = state.split()
        model, size, seconds = video.split()
        created = now - timedelta(minutes=minutes_old, seconds=20)
        finished = status in (Status.COMPLETED, Status.FAILED)
        error_code, error_message = ERRORS.get(task_id, ("", ""))
        lifetime = LINK_LIFETIME.get(task_id)
        # As the worker estimates it: the time so far, scaled by the progress still to make.
        remaining = timedelta(minutes=minutes_old + 1) * (100 - int(progress)) / max(int(progress), 1)
        task = VideoTask.objects.create(
            owner=owner,
            task_id=task_id,
            label=label,
            status=status,
            raw_status={"pending": "queued", "processing": "in_progress"}.get(status, status),
            progress=int(progress),
            model=model,
            size=size,
            seconds=Decimal(seconds),
            error_code=error_code,
            error_message=error_message,
            url=f"https://cdn.example/videos/{task_id}.mp4" if lifetime else "",
            expires_at=now + lifetime if lifetime else None,
            created_at=created,
            remote_created_at=created,
            completed_at=now - timedelta(minutes=minutes_old / 2) if finished else None,
            eta_at=now + remaining if status == Status.PROCESSING else None,
            last_polled_at=now - timedelta(seconds=4),
            # Not due: no worker runs here, and the picture should not change under us.
            next_poll_at=None if finished else now + timedelta(hours=1),
        )
        TaskEvent.objects.create(task=task, at=created, kind=TaskEvent.Kind.TRACKED, status=Status.PENDING)
    WorkerHeartbeat.objects.create(
        name="worker.1:4242", started_at=now - timedelta(hours=3), last_seen_at=now
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    # The IHDR chunk comes first: width and height as big-endian 32-bit integers.
    return struct.unpack(">II", data[16:24])


def test_dashboard_screenshot(login, owner, tmp_path, assert_no_console_errors):
    build_dashboard(owner)
    page = login("owner", "owner-password-1")
    page.set_viewport_size({"width": WIDTH, "height": 900})
    expect(page.locator("#task-rows tr.task")).to_have_count(8)
    expect(page.locator(".worker-ok")).to_be_visible()
    expect(page.locator("#task-rows a.download")).to_have_count(2)
    # Settled: fonts in, no request in flight, nothing from the first refresh still to swap.
    page.evaluate("document.fonts.ready.then(() => true)")
    page.wait_for_load_state("networkidle")

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)

    data = shot.read_bytes()
    width, height = png_size(data)
    assert width == WIDTH and height >= 600, (width, height)
    # A blank or broken page compresses to a few kilobytes; eight rows of text do not.
    assert len(data) > 40_000, len(data)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGE.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_IMAGE)
    assert_no_console_errors(page)
