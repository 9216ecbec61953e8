"""The provider is trusted by origin (scheme + host + port), and its key goes only to URLs
under its base URL: the download proxy and the keeper against a receiver on another port
of the provider's own host, and against a provider that trickles its headers."""

from __future__ import annotations

import time

import pytest

from tests.fake_provider import PROVIDER_KEY as KEY
from tests.fake_provider import FakeProvider, Reply
from tests.pages import finished
from videos import keep
from videos.models import KeepState, VideoTask

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


@pytest.fixture
def receiver():
    """Another service on another loopback port of the provider's host."""
    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture
def configured(configured, settings):
    settings.VIDEO_DOWNLOAD_DEADLINE = 2.0
    return configured


def test_a_link_to_another_port_of_the_providers_host_is_refused(configured, receiver, signed_in, owner):
    receiver.script("GET /files/x.mp4", Reply(200, body=VIDEO, headers={"Content-Type": "video/mp4"}))
    task = finished(
        owner, "video_other_port", url=f"http://127.0.0.1:{receiver.server.server_address[1]}/v1/files/x.mp4"
    )
    response = signed_in.get(f"/tasks/{task.pk}/download/")
    assert response.status_code == 502
    content = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"loopback" in content
    assert receiver.requests == []


def test_the_key_goes_with_a_direct_link_only_under_the_base_url(configured, signed_in, owner):
    for route in ("GET /videos/files/in.mp4", "GET /files/out.mp4"):
        configured.script(route, Reply(200, body=VIDEO, headers={"Content-Type": "video/mp4"}))
    origin = configured.base_url.removesuffix("/v1")
    inside = finished(owner, "video_inside", url=f"{configured.base_url}/videos/files/in.mp4")
    outside = finished(owner, "video_outside", url=f"{origin}/files/out.mp4")
    for task in (inside, outside):
        response = signed_in.get(f"/tasks/{task.pk}/download/")
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == VIDEO
    by_path = {seen.raw_path: seen.authorization for seen in configured.requests}
    assert by_path == {"/v1/videos/files/in.mp4": f"Bearer {KEY}", "/files/out.mp4": None}


def test_a_download_whose_headers_trickle_ends_at_the_deadline(configured, signed_in, owner):
    task = finished(owner, "video_trickle")
    configured.script("GET /videos/video_trickle/content", Reply(200, trickle_headers=0.05, trickle_for=30))
    started = time.monotonic()
    response = signed_in.get(f"/tasks/{task.pk}/download/")
    assert response.status_code == 502
    assert time.monotonic() - started < 4.0


def test_the_keeper_gives_up_on_trickled_headers_at_the_deadline_and_retries_later(configured, owner):
    task = finished(owner, "video_keep_trickle")
    VideoTask.objects.filter(pk=task.pk).update(keep_state=KeepState.WAITING)
    configured.script(
        "GET /videos/video_keep_trickle/content", Reply(200, trickle_headers=0.05, trickle_for=30)
    )
    task.refresh_from_db()
    started = time.monotonic()
    assert keep.keep(task) is False
    assert time.monotonic() - started < 4.0
    task.refresh_from_db()
    assert task.keep_state == KeepState.FAILED
    assert task.next_keep_at is not None  # transient: tried again later
    assert "headers" in task.keep_error or "took over" in task.keep_error
