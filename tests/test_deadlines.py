"""A provider that trickles its answer's headers, or points elsewhere, against the client.

Every request the client makes (status, create, remix, delete, list) ends within its
wall-clock deadline however slowly the headers arrive, and the key goes only to URLs under
the configured base URL, redirects included.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.fake_provider import FakeProvider, Reply, video
from videos import deadlines
from videos.client import PermanentError, TransientError, VideoAPIClient

KEY = "sk-deadline-secret-key-0123456789"
TIMEOUT = 1.0


@pytest.fixture
def client(provider: FakeProvider):
    client = VideoAPIClient(provider.base_url, KEY, timeout=TIMEOUT, connect_timeout=0.5)
    yield client
    client.close()


CALLS: dict[str, tuple[str, Callable[[VideoAPIClient], Any]]] = {
    "status": ("v", lambda c: c.retrieve("v")),
    "create": ("POST /videos", lambda c: c.create(prompt="a cat", model="m")),
    "remix": ("POST /videos/v/remix", lambda c: c.remix("v", "again")),
    "delete": ("DELETE /videos/v", lambda c: c.delete("v")),
    "list": ("GET /videos", lambda c: c.list_videos()),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_headers_trickled_a_byte_at_a_time_end_at_the_deadline(provider, client, call):
    # One header byte every 50 ms: far inside the read timeout, so only the clock stops it.
    route, request = CALLS[call]
    provider.script(route, Reply(200, trickle_headers=0.05, trickle_for=20))
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        request(client)
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + 1.0, f"{call} held the thread {elapsed:.1f} s"
    assert f"{TIMEOUT:g} s" in caught.value.message
    # A create that may have reached the provider is never assumed unsent.
    assert caught.value.sent is True


def test_the_pooled_connection_is_usable_after_a_deadline_fired(provider, client):
    provider.script("slow", Reply(200, trickle_headers=0.05, trickle_for=20))
    provider.script("v", video("v"))
    assert client.retrieve("v").payload["id"] == "v"
    with pytest.raises(TransientError):
        client.retrieve("slow")
    # A deadline that ended must not leave its shutdown behind on a reused connection.
    for _ in range(3):
        assert client.retrieve("v").payload["id"] == "v"


def test_a_deadline_that_did_not_fire_leaves_keep_alive_connections_alone(provider, client):
    provider.script("v", video("v"))
    for _ in range(3):
        client.retrieve("v")
    assert len({seen.peer_port for seen in provider.requests}) == 1


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    ends = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < ends, "condition not met in time"
        time.sleep(0.01)


def test_a_watchdog_deadline_moved_later_does_not_fire_early():
    left, right = socket.socketpair()
    with left, right:
        deadline = deadlines.arm(0.05)
        deadline.attach(left)
        deadline.extend_to(time.monotonic() + 30)
        # The watchdog fires in time order: once a later probe has fired, the first
        # deadline's old time has certainly been seen.
        with deadlines.arm(0.1) as probe:
            wait_for(lambda: probe.expired)
        assert not deadline.expired
        right.sendall(b"x")
        assert left.recv(1) == b"x"
        deadline.close()


def test_a_watchdog_deadline_unblocks_a_blocked_read():
    left, right = socket.socketpair()
    with left, right:
        with deadlines.arm(0.2) as deadline:
            deadline.attach(left)
            started = time.monotonic()
            assert left.recv(1) == b""  # shut down: reads as the end, at once
        assert deadline.expired
        assert time.monotonic() - started < 2.0


# Redirects: the client follows none that leave its base URL, and never for a POST.


class _Receiver:
    """Another HTTP server on loopback: records what reaches it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                receiver.seen.append({"path": self.path, **dict(self.headers.items())})
                body = b'{"id": "v", "status": "completed"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = _Receiver()
    yield receiver
    receiver.stop()


def test_a_status_redirect_to_another_port_of_the_providers_host_is_not_followed(provider, client, receiver):
    provider.script(
        "v", Reply(302, body=b"", headers={"Location": f"http://127.0.0.1:{receiver.port}/v1/videos/v"})
    )
    with pytest.raises(PermanentError) as caught:
        client.retrieve("v")
    assert "redirected" in caught.value.message
    assert receiver.seen == []


def test_a_status_redirect_outside_the_base_path_is_not_followed(provider, client):
    provider.script("v", Reply(302, body=b"", headers={"Location": "/admin/secrets"}))
    with pytest.raises(PermanentError):
        client.retrieve("v")
    assert [seen.raw_path for seen in provider.requests] == ["/v1/videos/v"]


def test_a_status_redirect_under_the_base_url_is_followed_with_the_key(provider, client):
    provider.script("v", Reply(301, body=b"", headers={"Location": "/v1/videos/moved"}))
    provider.script("moved", video("moved", status="completed"))
    assert client.retrieve("v").payload["id"] == "moved"
    assert [seen.authorization for seen in provider.requests] == [f"Bearer {KEY}"] * 2


def test_a_create_is_never_redirected_and_so_never_sent_twice(provider, client):
    provider.script("POST /videos", Reply(307, body=b"", headers={"Location": "/v1/videos"}))
    with pytest.raises(PermanentError):
        client.create(prompt="a cat", model="m")
    assert [seen.method for seen in provider.requests] == ["POST"]


def test_the_content_endpoint_sends_the_key_only_under_the_base_url(provider, client, receiver, settings):
    from videos.safe_fetch import SafeFetcher

    provider.script(
        "GET /videos/v/content",
        Reply(302, body=b"", headers={"Location": f"http://127.0.0.1:{receiver.port}/v1/file"}),
    )
    # Even with the receiver trusted for fetching, the key stays with the provider's origin.
    fetcher = SafeFetcher(
        trusted_origins=[provider.base_url, f"http://127.0.0.1:{receiver.port}"], deadline=5, read_timeout=2
    )
    with client.open_content("v", "video", fetcher) as download:
        assert b"".join(download.iter_bytes())
    (content,) = provider.requests
    assert content.authorization == f"Bearer {KEY}"
    assert len(receiver.seen) == 1 and "Authorization" not in receiver.seen[0]


# The poller: one hostile task must not hold a pass, or the other tasks, past its deadline.


@pytest.fixture
def poller(provider, db):
    from videos.polling import Poller

    client = VideoAPIClient(provider.base_url, KEY, timeout=TIMEOUT, connect_timeout=0.5)
    poller = Poller(client, interval=5.0, concurrency=8, rng=lambda: 0.5)
    yield poller
    poller.close()


def test_one_task_trickling_headers_does_not_hold_500_healthy_ones(provider, poller, owner):
    from videos.models import VideoTask

    healthy = [f"video_ok_{n}" for n in range(500)]
    for task_id in healthy:
        provider.script(task_id, video(task_id, "in_progress", 50))
    provider.script("video_slow", Reply(200, trickle_headers=0.05, trickle_for=60))
    VideoTask.objects.bulk_create(
        [VideoTask(owner=owner, task_id=task_id) for task_id in ["video_slow", *healthy]]
    )
    started = time.monotonic()
    report = poller.run_pass()
    elapsed = time.monotonic() - started
    # Before the deadline covered the headers, this pass lasted as long as the provider
    # trickled (a minute here).
    assert elapsed < 20, f"the pass took {elapsed:.1f} s"
    assert report.polled == 501
    polled = {seen.task_id for seen in provider.requests}
    assert polled >= set(healthy)
    assert VideoTask.objects.filter(task_id__in=healthy, progress=50).count() == 500
    slow = VideoTask.objects.get(task_id="video_slow")
    assert f"within {TIMEOUT:g} s" in slow.last_error
    assert slow.next_poll_at is not None  # tried again later, with a backoff


def test_a_request_stuck_beyond_any_socket_deadline_is_handed_back(provider, poller, owner):
    from videos.models import VideoTask

    # Something no socket deadline covers (a DNS lookup that hangs, say): the pass gives up
    # on that task after its deadline, hands it back, and finishes the others.
    release = threading.Event()
    real_retrieve = poller.client.retrieve

    def retrieve(task_id: str):
        if task_id == "video_stuck":
            release.wait(30)
        return real_retrieve(task_id)

    poller.client.retrieve = retrieve  # type: ignore[method-assign]
    poller.overdue_after = 0.5
    for task_id in ("video_a", "video_b"):
        provider.script(task_id, video(task_id, "in_progress", 20))
    VideoTask.objects.bulk_create(
        [VideoTask(owner=owner, task_id=task_id) for task_id in ("video_stuck", "video_a", "video_b")]
    )
    try:
        started = time.monotonic()
        report = poller.run_pass()
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < 10
    assert report.polled == 2 and report.handed_back == 1
    stuck = VideoTask.objects.get(task_id="video_stuck")
    assert stuck.lease_token is None  # handed back, free for the next pass
    assert stuck.next_poll_at is not None and stuck.poll_count == 0
    assert VideoTask.objects.filter(task_id__in=["video_a", "video_b"], progress=20).count() == 2
