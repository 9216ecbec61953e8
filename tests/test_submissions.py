"""Starting, remixing and deleting videos against a real HTTP server on loopback, and the
rule that matters most: a create is sent once, and a lost answer is reconciled, never resent."""

from __future__ import annotations

import json
import socket
import time

import pytest
from django.utils import timezone

from tests.fake_provider import Reply, video
from videos.client import VideoAPIClient
from videos.models import Status, Submission, VideoTask
from videos.submissions import RECONCILE_ATTEMPTS, VideoRequest, reconcile, submit

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def client(provider):
    client = VideoAPIClient(provider.base_url, "sk-create", timeout=1.0, connect_timeout=1.0)
    yield client
    client.close()


def posts(provider, path: str = "/videos") -> list:
    return [seen for seen in provider.requests if seen.method == "POST" and seen.task_id == f"POST {path}"]


def test_a_create_is_sent_as_json_and_tracked_at_once(provider, client, owner):
    provider.script(
        "POST /videos", video("video_new", "queued", 0, model="veo-3", seconds="8", size="1280x720")
    )
    request = VideoRequest(prompt="A lighthouse at dawn", model="veo-3", seconds="8", size="1280x720")
    submission = submit(owner, request, client)
    assert submission.state == Submission.State.CREATED
    task = submission.task
    assert (task.task_id, task.owner, task.label, task.model) == (
        "video_new",
        owner,
        "A lighthouse at dawn",
        "veo-3",
    )
    assert task.next_poll_at is None  # polled within seconds
    (sent,) = posts(provider)
    assert sent.content_type == "application/json"
    assert json.loads(sent.body) == {
        "prompt": "A lighthouse at dawn",
        "model": "veo-3",
        "seconds": "8",
        "size": "1280x720",
    }
    assert sent.authorization == "Bearer sk-create"


def test_a_reference_image_goes_as_multipart(provider, client, owner):
    provider.script("POST /videos", video("video_ref", "queued", 0))
    request = VideoRequest(prompt="Animate this", model="veo-3", reference=("still.png", PNG, "image/png"))
    assert submit(owner, request, client).state == Submission.State.CREATED
    (sent,) = posts(provider)
    assert sent.content_type.startswith("multipart/form-data; boundary=")
    assert b'name="input_reference"; filename="still.png"' in sent.body
    assert b"Content-Type: image/png" in sent.body
    assert PNG in sent.body
    assert b'name="prompt"' in sent.body


def test_a_lost_answer_is_reconciled_without_a_second_post(provider, client, owner):
    # The provider makes the video but its answer never arrives in time.
    provider.script("POST /videos", Reply(200, {"id": "video_lost"}, delay=2.5))
    request = VideoRequest(prompt="Storm over the bay", model="veo-3", seconds="8", size="1280x720")
    submission = submit(owner, request, client)
    assert submission.state == Submission.State.UNKNOWN
    assert "not sent again" in submission.error_message
    assert not VideoTask.objects.exists()

    listed = video(
        "video_lost",
        "in_progress",
        20,
        model="veo-3",
        seconds="8",
        size="1280x720",
        prompt="Storm over the bay",
        created_at=int(time.time()),
    ).json
    decoy = video(
        "video_other", "queued", 0, model="veo-3", prompt="Something else", created_at=int(time.time())
    ).json
    provider.script("GET /videos", Reply(200, {"object": "list", "data": [decoy, listed], "has_more": False}))
    assert reconcile(client, now=timezone.now() + timezone.timedelta(seconds=30)) == 1
    submission.refresh_from_db()
    assert submission.state == Submission.State.CREATED
    assert submission.task.task_id == "video_lost"
    assert submission.task.status == Status.PROCESSING
    assert len(posts(provider)) == 1


def test_a_lost_answer_with_no_video_ends_as_not_created(provider, client, owner):
    provider.script("POST /videos", Reply(reset=True))
    submission = submit(owner, VideoRequest(prompt="Never made", model="veo-3"), client)
    assert submission.state == Submission.State.UNKNOWN
    provider.script("GET /videos", Reply(200, {"object": "list", "data": [], "has_more": False}))
    later = timezone.now()
    for _ in range(RECONCILE_ATTEMPTS):
        later += timezone.timedelta(minutes=5)
        reconcile(client, now=later)
    submission.refresh_from_db()
    assert submission.state == Submission.State.NOT_CREATED
    assert "nothing was billed" in submission.error_message
    assert len(posts(provider)) == 1


def test_a_refused_connection_says_nothing_was_sent(owner):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = VideoAPIClient(f"http://127.0.0.1:{port}/v1", "sk-create", timeout=1.0)
    submission = submit(owner, VideoRequest(prompt="x", model="veo-3"), client)
    assert submission.state == Submission.State.REJECTED
    assert "Nothing was sent" in submission.error_message


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (
            Reply(
                400, {"error": {"message": "Invalid size '999x1'.", "code": "invalid_value", "param": "size"}}
            ),
            "The provider refused the request: Invalid size '999x1'.",
        ),
        (
            Reply(
                400, {"error": {"message": "Prompt violates our policy.", "code": "content_policy_violation"}}
            ),
            "safety system refused this request",
        ),
        (Reply(429, {"error": {"code": "insufficient_quota", "message": "Out of credit"}}), "out of quota"),
        (
            Reply(401, {"error": {"message": "bad key sk-create", "code": "invalid_api_key"}}),
            "refused the API key",
        ),
        (Reply(429, {}, headers={"Retry-After": "20"}), "Try again in 20 s"),
    ],
)
def test_provider_errors_are_shown_in_plain_words(provider, client, owner, reply, words):
    provider.script("POST /videos", reply)
    submission = submit(owner, VideoRequest(prompt="x", model="veo-3"), client)
    assert submission.state == Submission.State.REJECTED
    assert words in submission.error_message
    assert "sk-create" not in submission.error_message
    assert len(posts(provider)) == 1


def test_remix_makes_a_linked_task(provider, client, owner):
    source = VideoTask.objects.create(owner=owner, task_id="video_src", status=Status.COMPLETED)
    provider.script(
        "POST /videos/video_src/remix", video("video_remix", "queued", 0, remixed_from_video_id="video_src")
    )
    submission = submit(owner, VideoRequest(prompt="Now at night"), client, remix_of=source)
    assert submission.state == Submission.State.CREATED
    assert submission.task.remixed_from == source
    (sent,) = posts(provider, "/videos/video_src/remix")
    assert json.loads(sent.body) == {"prompt": "Now at night"}


def test_delete_sends_delete(provider, client):
    provider.script("DELETE /videos/video_gone", Reply(200, {"id": "video_gone", "deleted": True}))
    assert client.delete("video_gone") == {"id": "video_gone", "deleted": True}
    (seen,) = provider.requests
    assert (seen.method, seen.raw_path) == ("DELETE", "/v1/videos/video_gone")
