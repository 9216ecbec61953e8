"""The download proxy: the dashboard streams the video from the provider, with the key kept
on the server, and refuses links that point into its own network."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.fake_provider import PROVIDER_KEY as KEY
from tests.fake_provider import Reply
from tests.pages import finished
from videos.models import Status, VideoTask

VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 400


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_content_endpoint_is_streamed_with_the_key_kept_here(configured, signed_in, owner):
    task = finished(owner)
    configured.script(
        "GET /videos/video/dl+1=/content", Reply(200, body=VIDEO_BYTES, headers={"Content-Type": "video/mp4"})
    )
    response = signed_in.get(f"/tasks/{task.pk}/download/")
    assert response.status_code == 200
    assert body(response) == VIDEO_BYTES
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Length"] == str(len(VIDEO_BYTES))
    assert response["Content-Disposition"] == 'attachment; filename="video_dl_1.mp4"'
    (seen,) = configured.requests
    assert seen.raw_path == "/v1/videos/video%2Fdl%2B1%3D/content?variant=video"
    assert seen.authorization == f"Bearer {KEY}"
    assert KEY not in str(response.headers)


def test_a_direct_link_on_the_provider_is_used_while_it_lives(configured, signed_in, owner):
    link = f"{configured.base_url}/files/abc.mp4?sig=1"
    task = finished(owner, "video_direct", url=link, expires_at=timezone.now() + timedelta(hours=1))
    configured.script(
        "GET /files/abc.mp4", Reply(200, body=VIDEO_BYTES, headers={"Content-Type": "video/mp4"})
    )
    response = signed_in.get(f"/tasks/{task.pk}/download/")
    assert body(response) == VIDEO_BYTES
    assert configured.requests[0].raw_path == "/v1/files/abc.mp4?sig=1"


def test_the_thumbnail_variant(configured, signed_in, owner):
    task = finished(owner, "video_thumb")
    jpeg = b"\xff\xd8\xff\xe0" + b"\x01" * 500
    configured.script(
        "GET /videos/video_thumb/content", Reply(200, body=jpeg, headers={"Content-Type": "image/jpeg"})
    )
    response = signed_in.get(f"/tasks/{task.pk}/download/", {"variant": "thumbnail"})
    assert body(response) == jpeg
    assert response["Content-Type"] == "image/jpeg"
    # An attachment even so: <img> and a poster ignore Content-Disposition.
    assert response["Content-Disposition"] == 'attachment; filename="video_thumb-thumbnail.jpg"'
    assert configured.requests[0].raw_path.endswith("/content?variant=thumbnail")


@pytest.mark.parametrize(
    "link",
    [
        "http://127.0.0.2:9/v.mp4",  # loopback, but not the provider's host
        "http://localhost:9/v.mp4",
        "http://[::1]:9/v.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/v.mp4",
        "http://0x7f000002:9/v.mp4",  # 127.0.0.2 spelt as a number
    ],
)
def test_a_link_into_the_servers_own_network_is_refused(configured, signed_in, owner, link):
    task = finished(owner, "video_ssrf", url=link)
    response = signed_in.get(f"/tasks/{task.pk}/download/")
    assert response.status_code == 502
    assert b"Refused to fetch" in response.content
    assert configured.requests == []


def test_a_redirect_into_the_servers_own_network_is_refused(configured, signed_in, owner):
    task = finished(owner, "video_hop", url=f"{configured.base_url}/hop")
    configured.script("GET /hop", Reply(302, body=b"", headers={"Location": "http://127.0.0.2:9/secret"}))
    response = signed_in.get(f"/tasks/{task.pk}/download/")
    assert response.status_code == 502
    assert b"Refused to fetch" in response.content


def test_a_file_the_provider_no_longer_has_is_a_404(configured, signed_in, owner):
    task = finished(owner, "video_gone")
    configured.script("GET /videos/video_gone/content", Reply(404, {"error": {"message": "gone"}}))
    assert signed_in.get(f"/tasks/{task.pk}/download/").status_code == 404


def test_nothing_to_download_is_a_404(configured, client, owner, outsider):
    running = VideoTask.objects.create(owner=owner, task_id="running", status=Status.PROCESSING)
    expired = finished(owner, "expired", expires_at=timezone.now() - timedelta(minutes=1))
    mine = finished(owner, "mine")
    client.force_login(owner)
    assert client.get(f"/tasks/{running.pk}/download/").status_code == 404
    assert client.get(f"/tasks/{expired.pk}/download/").status_code == 404
    assert client.get(f"/tasks/{mine.pk}/download/", {"variant": "../../etc"}).status_code == 404
    client.force_login(outsider)
    assert client.get(f"/tasks/{mine.pk}/download/").status_code == 404
    assert configured.requests == []
