"""Thumbnails in a real Chromium: one that fails to load is hidden, one that loads stays."""

from __future__ import annotations

import struct
import zlib

from playwright.sync_api import expect

from tests.fake_provider import Reply
from videos.models import Status, VideoTask


def one_pixel_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\x20\x80\xc0")  # filter byte, then one pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def finished(owner, task_id: str) -> VideoTask:
    # A thumbnail name on a task that is not kept: the dashboard fetches it from the provider.
    # Rows show a thumbnail beside a label.
    return VideoTask.objects.create(
        owner=owner,
        task_id=task_id,
        label=f"Label of {task_id}",
        status=Status.COMPLETED,
        progress=100,
        kept_thumbnail=f"kept/thumbnails/{task_id}.png",
    )


def test_a_rows_thumbnail_that_fails_to_load_is_hidden(configured, login, owner):
    shown = finished(owner, "video_thumb_ok")
    missing = finished(owner, "video_thumb_gone")  # not scripted: the provider answers 404
    configured.script(
        "GET /videos/video_thumb_ok/content",
        Reply(200, body=one_pixel_png(), headers={"Content-Type": "image/png"}),
    )

    page = login("owner", "owner-password-1")

    broken = page.locator(f"#task-{missing.pk} img.thumb-small")
    expect(broken).to_have_count(1)
    expect(broken).to_have_js_property("hidden", True)
    expect(broken).to_be_hidden()
    good = page.locator(f"#task-{shown.pk} img.thumb-small")
    expect(good).to_have_js_property("naturalWidth", 1)
    expect(good).to_be_visible()
    # Chromium logs the failed load; here it is the point of the test, so it is no failure.
    errors = list(page.console_errors)  # type: ignore[attr-defined]
    assert errors and all("404" in error for error in errors), errors
    page.console_errors.clear()  # type: ignore[attr-defined]
