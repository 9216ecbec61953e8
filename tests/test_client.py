"""The provider client against a real HTTP server on loopback, one HTTP outcome at a time."""

from __future__ import annotations

import email.utils
import socket
import time

import pytest

from tests.fake_provider import Reply, video
from videos.client import (
    AuthError,
    InvalidTaskId,
    NotFound,
    PermanentError,
    QuotaExceeded,
    RateLimited,
    TransientError,
    VideoAPIClient,
    parse_retry_after,
    validate_task_id,
)

KEY = "sk-test-secret-key-0123456789"


@pytest.fixture
def client(provider):
    client = VideoAPIClient(provider.base_url, KEY, timeout=2.0, connect_timeout=1.0, max_response_bytes=4096)
    yield client
    client.close()


def test_returns_the_payload_and_sends_the_key_as_bearer(provider, client):
    provider.script("video_1", video("video_1", "completed", 100, url="https://cdn.example/v.mp4"))
    answer = client.retrieve("video_1")
    assert answer.payload["status"] == "completed"
    assert answer.poll_after is None
    (seen,) = provider.requests
    assert seen.authorization == f"Bearer {KEY}"
    assert seen.raw_path == "/v1/videos/video_1"


@pytest.mark.parametrize(
    ("task_id", "raw_path"),
    [
        ("abc/def", "/v1/videos/abc%2Fdef"),
        ("a+b=", "/v1/videos/a%2Bb%3D"),
        ("x?y=1", "/v1/videos/x%3Fy%3D1"),
        ("x#frag", "/v1/videos/x%23frag"),
        ("../../admin", "/v1/videos/..%2F..%2Fadmin"),
        ("task:1@host", "/v1/videos/task%3A1%40host"),
        ("vidéo", "/v1/videos/vid%C3%A9o"),
    ],
)
def test_task_ids_are_percent_encoded_into_one_path_segment(provider, client, task_id, raw_path):
    provider.script(task_id, video(task_id))
    client.retrieve(task_id)
    (seen,) = provider.requests
    assert seen.raw_path == raw_path
    assert seen.task_id == task_id


@pytest.mark.parametrize("task_id", ["", "   ", ".", "..", "...", "a b", "a\nb", "a\x00b", "x" * 256])
def test_ids_that_could_alter_the_path_are_refused_before_any_request(provider, client, task_id):
    with pytest.raises(InvalidTaskId):
        client.retrieve(task_id)
    assert provider.requests == []


def test_validate_task_id_strips_surrounding_space():
    assert validate_task_id("  video_1\n") == "video_1"


def test_poll_after_header_is_read_in_seconds(provider, client):
    provider.script(
        "v", Reply(200, {"id": "v", "status": "queued"}, headers={"openai-poll-after-ms": "7500"})
    )
    assert client.retrieve("v").poll_after == 7.5


@pytest.mark.parametrize(
    "reply",
    [
        Reply(404, {"error": {"message": "Video not found", "code": "video_not_found"}}),
        Reply(404, body=b"<html>Not Found</html>", headers={"Content-Type": "text/html"}),
        Reply(404, body=b""),
        Reply(400, {"code": "task_not_exist", "message": "task_not_exist", "data": None}),
        Reply(400, {"error": {"code": "task_not_exist", "message": "no such task"}}),
    ],
)
def test_not_found_answers(provider, client, reply):
    provider.script("v", reply)
    with pytest.raises(NotFound):
        client.retrieve("v")


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_never_echo_the_key(provider, client, status):
    body = {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}
    provider.script("v", Reply(status, body))
    with pytest.raises(AuthError) as caught:
        client.retrieve("v")
    assert caught.value.status_code == status
    assert KEY not in str(caught.value)
    assert KEY not in repr(client)


def test_an_error_code_carrying_the_key_is_scrubbed(provider, client):
    provider.script("v", Reply(422, {"error": {"code": f"bad {KEY}"}}))
    with pytest.raises(PermanentError) as caught:
        client.retrieve("v")
    assert KEY not in caught.value.message
    assert "[key]" in caught.value.message


def test_429_with_retry_after_ms(provider, client):
    provider.script(
        "v", Reply(429, {"error": {"code": "rate_limit_exceeded"}}, headers={"retry-after-ms": "1500"})
    )
    with pytest.raises(RateLimited) as caught:
        client.retrieve("v")
    assert caught.value.retry_after == 1.5


def test_429_with_retry_after_seconds(provider, client):
    provider.script("v", Reply(429, {}, headers={"Retry-After": "12"}))
    with pytest.raises(RateLimited) as caught:
        client.retrieve("v")
    assert caught.value.retry_after == 12


def test_429_with_retry_after_http_date(provider, client):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    provider.script("v", Reply(429, {}, headers={"Retry-After": when}))
    with pytest.raises(RateLimited) as caught:
        client.retrieve("v")
    assert 25 <= caught.value.retry_after <= 31


def test_429_without_a_wait_leaves_it_to_backoff(provider, client):
    provider.script("v", Reply(429, {"error": {"message": "slow down"}}))
    with pytest.raises(RateLimited) as caught:
        client.retrieve("v")
    assert caught.value.retry_after is None


def test_429_insufficient_quota_is_not_transient(provider, client):
    provider.script(
        "v", Reply(429, {"error": {"code": "insufficient_quota", "message": "You exceeded your quota"}})
    )
    with pytest.raises(QuotaExceeded) as caught:
        client.retrieve("v")
    assert caught.value.transient is False


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after-ms": "junk", "Retry-After": "9"}, 9),
        ({"Retry-After": "junk"}, None),
        ({"Retry-After": "-5"}, 0),
        ({"Retry-After": "999999999"}, 24 * 3600),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0),
        ({}, None),
    ],
)
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(headers) == expected


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(provider, client, status):
    provider.script("v", Reply(status, body=b"<html>Bad gateway</html>"))
    with pytest.raises(TransientError) as caught:
        client.retrieve("v")
    assert caught.value.status_code == status
    assert caught.value.transient is True


def test_other_client_errors_are_permanent(provider, client):
    provider.script("v", Reply(400, {"error": {"code": "invalid_request", "message": "bad"}}))
    with pytest.raises(PermanentError) as caught:
        client.retrieve("v")
    assert "invalid_request" in caught.value.message


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (
            Reply(200, body=b"<!doctype html><html>Cloudflare</html>", headers={"Content-Type": "text/html"}),
            "HTML",
        ),
        (Reply(200, body=b""), "empty"),
        (Reply(200, body=b'{"id": "v", "status": "in_pro'), "JSON"),
        (Reply(200, body=b'["not", "an", "object"]'), "JSON"),
        (Reply(200, body=b"null"), "JSON"),
    ],
)
def test_unusable_200_answers_are_transient(provider, client, reply, words):
    provider.script("v", reply)
    with pytest.raises(TransientError) as caught:
        client.retrieve("v")
    assert words in caught.value.message


def test_a_body_promised_longer_than_sent_is_transient(provider, client):
    provider.script("v", Reply(200, {"id": "v", "status": "queued"}, truncate=True))
    with pytest.raises(TransientError):
        client.retrieve("v")


def test_a_body_over_the_size_cap_is_refused(provider, client):
    provider.script("v", Reply(200, {"id": "v", "status": "queued", "padding": "x" * 10_000}))
    with pytest.raises(TransientError) as caught:
        client.retrieve("v")
    assert "limit" in caught.value.message


def test_a_chunked_body_over_the_size_cap_is_cut_off(provider, client):
    # No Content-Length to trust: the cap must hold while reading.
    big = b'{"padding": "' + b"x" * 10_000 + b'"}'
    provider.script("v", Reply(200, body=big, headers={"Transfer-Encoding": "chunked"}))
    with pytest.raises(TransientError):
        client.retrieve("v")


def test_a_slow_answer_times_out(provider, client):
    provider.script("v", Reply(200, {"id": "v"}, delay=3.0))
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        client.retrieve("v")
    assert time.monotonic() - started < 2.9
    assert "within" in caught.value.message or "reach" in caught.value.message


def test_a_body_trickling_in_is_cut_at_the_deadline(provider, client):
    # Each byte arrives well inside the read timeout, but the whole body never would.
    provider.script("v", Reply(200, {"id": "v", "status": "queued", "pad": "x" * 200}, trickle=0.05))
    started = time.monotonic()
    with pytest.raises(TransientError):
        client.retrieve("v")
    assert time.monotonic() - started < 4


def test_a_connection_reset_is_transient(provider, client):
    provider.script("v", Reply(reset=True))
    with pytest.raises(TransientError):
        client.retrieve("v")


def test_a_dead_provider_is_transient():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = VideoAPIClient(f"http://127.0.0.1:{port}/v1", KEY, timeout=1.0)
    with pytest.raises(TransientError) as caught:
        client.retrieve("v")
    assert KEY not in caught.value.message
    assert str(port) not in caught.value.message  # no URL in the display string


def test_connections_are_reused(provider, client):
    provider.script("v", video("v"))
    for _ in range(5):
        client.retrieve("v")
    assert len(provider.requests) == 5
    # One pooled keep-alive connection served all five.
    assert len({seen.peer_port for seen in provider.requests}) == 1
