from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import authenticate
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.utils import timezone

from sandbox import jobs
from sandbox.models import SandboxVideo
from videos.models import TaskEvent, VideoTask
from videos.normalize import normalize

BASE = "http://testserver/sandbox/v1"
AUTH = {"Authorization": "Bearer any-token"}
SAMPLE = Path(django_settings.BASE_DIR) / "sandbox" / "static" / "sandbox" / "sample.mp4"

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.sandbox_urls")]


def past_video(seconds_ago: float, **kwargs) -> SandboxVideo:
    """A video created `seconds_ago`, so its state at the real now is known."""
    return jobs.create_video(now=timezone.now() - timedelta(seconds=seconds_ago), **kwargs)


def timeline(video: SandboxVideo, until: int) -> list[dict]:
    return [
        jobs.video_payload(video, video.created_at + timedelta(seconds=s), base_url=BASE)
        for s in range(until + 1)
    ]


def collapse(words: list[str]) -> list[str]:
    return [w for i, w in enumerate(words) if i == 0 or words[i - 1] != w]


def percent(progress: str) -> int:
    assert re.fullmatch(r"\d{1,3}%", progress)
    return int(progress[:-1])


def body(response) -> bytes:
    data = b"".join(response.streaming_content)
    response.close()
    return data


# The behaviour, over time


def test_openai_vocabulary_progresses_queued_in_progress_completed():
    video = jobs.create_video(prompt="p", duration_seconds=100, outcome="completed", vocabulary="openai")
    payloads = timeline(video, 110)

    assert collapse([p["status"] for p in payloads]) == ["queued", "in_progress", "completed"]
    progress = [p["progress"] for p in payloads]
    assert all(isinstance(value, int) and 0 <= value <= 100 for value in progress)
    assert progress == sorted(progress)
    assert payloads[10]["status"] == "queued"
    assert payloads[10]["progress"] == 0
    assert payloads[50]["status"] == "in_progress"
    assert 0 < payloads[50]["progress"] < payloads[90]["progress"] < 100
    assert "url" not in payloads[99]

    done = payloads[100]
    created = int(video.created_at.timestamp())
    assert done["id"] == video.video_id
    assert done["object"] == "video"
    assert done["progress"] == 100
    assert done["created_at"] == created
    assert done["completed_at"] in (created + 100, created + 101)
    assert done["expires_at"] == done["completed_at"] + 3600
    assert done["url"] == jobs.content_url(video, BASE)
    assert done["url"].startswith(f"{BASE}/videos/{video.video_id}/content?expires=")
    assert done["error"] is None
    assert done["seconds"] == "4"
    assert done["size"] == "1280x720"
    assert done["model"] == "sandbox-video-1"


def test_gateway_vocabulary_progresses_pending_processing_succeeded():
    video = jobs.create_video(prompt="p", duration_seconds=60, outcome="completed", vocabulary="gateway")
    payloads = timeline(video, 70)

    assert collapse([p["status"] for p in payloads]) == ["pending", "processing", "succeeded"]
    progress = [percent(p["progress"]) for p in payloads]
    assert progress == sorted(progress)
    assert progress[0] == 0
    assert progress[-1] == 100

    done = payloads[60]
    created_ms = int(video.created_at.timestamp() * 1000)
    assert done["created_at"] == created_ms
    assert done["completed_at"] == created_ms + 60_000
    assert done["expires_at"] == done["completed_at"] + 3_600_000
    assert "url" not in done
    link = done.get("video_url") or done.get("metadata", {}).get("url")
    assert link == jobs.content_url(video, BASE)
    assert "completed_at" not in payloads[30]


@pytest.mark.parametrize(("vocabulary", "failed_word"), [("openai", "failed"), ("gateway", "failed")])
def test_a_failing_video_fails_partway_with_an_error_object(vocabulary, failed_word):
    video = jobs.create_video(prompt="p", duration_seconds=100, outcome="failed", vocabulary=vocabulary)
    payloads = timeline(video, 120)

    assert collapse([p["status"] for p in payloads])[-1] == failed_word
    assert payloads[59]["status"] in ("in_progress", "processing")
    failed = payloads[60]
    assert failed["status"] == failed_word
    assert failed["error"]["code"]
    assert failed["error"]["message"]
    assert not {"url", "video_url", "metadata"} & failed.keys()
    assert payloads[120] == failed  # a terminal answer never changes
    values = [p["progress"] if vocabulary == "openai" else percent(p["progress"]) for p in payloads]
    assert values == sorted(values)
    assert values[-1] < 100


def test_failure_messages_vary_but_each_video_keeps_its_own():
    videos = [jobs.create_video(outcome="failed", duration_seconds=10) for _ in range(30)]
    assert len({jobs.failure(video) for video in videos}) > 1
    later = timezone.now() + timedelta(hours=1)
    first = jobs.video_payload(videos[0], later, base_url=BASE)["error"]
    assert jobs.video_payload(videos[0], later, base_url=BASE)["error"] == first


def test_defaults_are_drawn_at_random_within_bounds():
    for _ in range(20):
        video = jobs.create_video()
        assert re.fullmatch(r"video_[0-9a-f]{24}", video.video_id)
        assert 45 <= video.duration_seconds <= 110
        assert video.outcome in jobs.OUTCOMES
        assert video.vocabulary in jobs.VOCABULARIES


@pytest.mark.parametrize("vocabulary", ["openai", "gateway"])
def test_the_poller_normalises_every_phase(vocabulary):
    completes = jobs.create_video(duration_seconds=100, outcome="completed", vocabulary=vocabulary)
    fails = jobs.create_video(duration_seconds=100, outcome="failed", vocabulary=vocabulary)
    link = jobs.content_url(completes, BASE)

    def at(video: SandboxVideo, seconds: int):
        return normalize(
            jobs.video_payload(video, video.created_at + timedelta(seconds=seconds), base_url=BASE)
        )

    queued, running, done, failed = at(completes, 5), at(completes, 50), at(completes, 100), at(fails, 70)
    assert (queued.status, queued.progress, queued.url) == ("pending", 0, None)
    assert running.status == "processing"
    assert running.progress == jobs.phase(completes, completes.created_at + timedelta(seconds=50))[1]
    assert running.url is None
    assert (done.status, done.progress, done.url) == ("completed", 100, link)
    # Seconds or milliseconds on the wire: either way within a second of the true time.
    finished = completes.created_at + timedelta(seconds=100)
    assert abs((done.completed_at - finished).total_seconds()) < 1
    assert done.expires_at is not None
    assert done.remote_created_at is not None
    assert failed.status == "failed"
    assert failed.url is None
    assert (failed.error_code, failed.error_message) == jobs.failure(fails)


# The HTTP API


def test_status_endpoint_answers_the_payload_with_an_absolute_link(client):
    video = past_video(200, prompt="p", duration_seconds=40, outcome="completed", vocabulary="openai")
    response = client.get(f"/sandbox/v1/videos/{video.video_id}", headers=AUTH)
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "completed"
    assert data["url"] == jobs.content_url(video, "http://testserver/sandbox/v1")


def test_links_follow_the_scheme_the_proxy_reports(client, settings):
    video = past_video(200, duration_seconds=40, outcome="completed", vocabulary="openai")
    response = client.get(
        f"/sandbox/v1/videos/{video.video_id}", headers={**AUTH, "X-Forwarded-Proto": "https"}
    )
    assert response.json()["url"].startswith("https://testserver")


def test_content_serves_the_sample_mp4_once_completed(client):
    video = past_video(200, duration_seconds=40, outcome="completed")
    response = client.get(f"/sandbox/v1/videos/{video.video_id}/content", headers=AUTH)
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    data = body(response)
    assert data[4:8] == b"ftyp"
    assert data == SAMPLE.read_bytes()
    assert int(response["Content-Length"]) == len(data)


@pytest.mark.parametrize("variant", ["thumbnail", "spritesheet"])
def test_content_serves_images_for_the_other_variants(client, variant):
    video = past_video(200, duration_seconds=40, outcome="completed")
    response = client.get(f"/sandbox/v1/videos/{video.video_id}/content?variant={variant}", headers=AUTH)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    data = body(response)
    assert data[:3] == b"\xff\xd8\xff"
    assert int(response["Content-Length"]) == len(data)


def test_content_is_404_until_completed_and_for_failures(client):
    running = jobs.create_video(duration_seconds=60, outcome="completed")
    failed = past_video(200, duration_seconds=40, outcome="failed")
    for video, code in ((running, "video_not_ready"), (failed, "video_not_found")):
        response = client.get(f"/sandbox/v1/videos/{video.video_id}/content", headers=AUTH)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == code


def test_content_rejects_an_unknown_variant(client):
    video = past_video(200, duration_seconds=40, outcome="completed")
    response = client.get(f"/sandbox/v1/videos/{video.video_id}/content?variant=audio", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "variant"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/sandbox/v1/videos/{id}"),
        ("get", "/sandbox/v1/videos"),
        ("post", "/sandbox/v1/videos"),
        ("delete", "/sandbox/v1/videos/{id}"),
        ("post", "/sandbox/v1/videos/{id}/remix"),
        ("get", "/sandbox/v1/videos/{id}/content"),
    ],
)
def test_every_endpoint_requires_the_configured_key(client, settings, method, path):
    settings.VIDEO_API_KEY = "sk-sandbox-secret-123"
    video = past_video(200, duration_seconds=40, outcome="completed")
    url = path.format(id=video.video_id)
    for headers in ({"Authorization": "Bearer sk-wrong-guess-456"}, {}, {"Authorization": "Basic abc"}):
        response = getattr(client, method)(url, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert b"sk-sandbox-secret-123" not in response.content
        assert b"sk-wrong-guess-456" not in response.content
    wrong = getattr(client, method)(url, headers={"Authorization": "Bearer sk-wrong-guess-456"})
    assert wrong.json() == {
        "error": {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    right = getattr(client, method)(
        url, {"prompt": "again"}, headers={"Authorization": "Bearer sk-sandbox-secret-123"}
    )
    assert right.status_code == 200
    assert b"sk-sandbox-secret-123" not in b"".join(
        right.streaming_content if right.streaming else [right.content]
    )
    right.close()


def test_without_a_configured_key_any_bearer_token_is_accepted(client, settings):
    settings.VIDEO_API_KEY = ""
    assert client.get("/sandbox/v1/videos", headers={"Authorization": "Bearer whatever"}).status_code == 200
    assert client.get("/sandbox/v1/videos").status_code == 401


@pytest.mark.parametrize(
    ("method", "suffix"), [("get", ""), ("delete", ""), ("get", "/content"), ("post", "/remix")]
)
def test_unknown_ids_are_404(client, method, suffix):
    response = getattr(client, method)(
        f"/sandbox/v1/videos/video_nope{suffix}", {"prompt": "x"}, headers=AUTH
    )
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "Video with id 'video_nope' not found.",
            "type": "invalid_request_error",
            "code": "video_not_found",
        }
    }


def test_create_from_json():
    from django.test import Client

    # An API client has no CSRF token: the endpoint must not ask for one.
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/sandbox/v1/videos",
        {"prompt": "a lighthouse", "model": "veo-3", "seconds": 8, "size": "720x1280"},
        content_type="application/json",
        headers=AUTH,
    )
    assert response.status_code == 200
    data = response.json()
    assert re.fullmatch(r"video_[0-9a-f]{24}", data["id"])
    assert data["status"] in ("queued", "pending")
    assert (data["model"], data["seconds"], data["size"]) == ("veo-3", "8", "720x1280")
    assert SandboxVideo.objects.get(video_id=data["id"]).prompt == "a lighthouse"


def test_create_from_multipart_accepts_an_input_reference(client):
    image = SimpleUploadedFile("ref.png", b"\x89PNG\r\n\x1a\n", content_type="image/png")
    response = client.post(
        "/sandbox/v1/videos",
        {"prompt": "a fox", "seconds": "4", "input_reference": image},
        headers=AUTH,
    )
    assert response.status_code == 200
    video = SandboxVideo.objects.get(video_id=response.json()["id"])
    assert (video.prompt, video.seconds, video.size, video.model) == (
        "a fox",
        "4",
        "1280x720",
        "sandbox-video-1",
    )


def test_create_honours_the_sandbox_extensions(client):
    response = client.post(
        "/sandbox/v1/videos",
        {
            "prompt": "quick",
            "sandbox_duration_seconds": 3,
            "sandbox_outcome": "failed",
            "sandbox_vocabulary": "gateway",
        },
        content_type="application/json",
        headers=AUTH,
    )
    video = SandboxVideo.objects.get(video_id=response.json()["id"])
    assert (video.duration_seconds, video.outcome, video.vocabulary) == (3, "failed", "gateway")


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({}, "prompt"),
        ({"prompt": "x", "size": "big"}, "size"),
        ({"prompt": "x", "seconds": "ten"}, "seconds"),
        ({"prompt": "x", "sandbox_outcome": "maybe"}, "sandbox_outcome"),
        ({"prompt": "x", "model": ["a"]}, "model"),
    ],
)
def test_create_rejects_bad_parameters(client, data, param):
    response = client.post("/sandbox/v1/videos", data, content_type="application/json", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert not SandboxVideo.objects.exists()


def test_create_rejects_broken_json(client):
    response = client.post("/sandbox/v1/videos", "{nope", content_type="application/json", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_list_paginates_with_a_cursor(client):
    start = timezone.now() - timedelta(minutes=10)
    ids = [jobs.create_video(now=start + timedelta(seconds=i)).video_id for i in range(5)]

    first = client.get("/sandbox/v1/videos?limit=2", headers=AUTH).json()
    assert first["object"] == "list"
    assert [v["id"] for v in first["data"]] == [ids[4], ids[3]]
    assert (first["has_more"], first["first_id"], first["last_id"]) == (True, ids[4], ids[3])

    second = client.get(f"/sandbox/v1/videos?limit=2&after={ids[3]}", headers=AUTH).json()
    assert [v["id"] for v in second["data"]] == [ids[2], ids[1]]
    last = client.get(f"/sandbox/v1/videos?limit=2&after={ids[1]}", headers=AUTH).json()
    assert [v["id"] for v in last["data"]] == [ids[0]]
    assert last["has_more"] is False

    ascending = client.get("/sandbox/v1/videos?order=asc&limit=3", headers=AUTH).json()
    assert [v["id"] for v in ascending["data"]] == ids[:3]
    assert ascending["has_more"] is True


def test_list_breaks_timestamp_ties_without_skipping():
    now = timezone.now()
    ids = [jobs.create_video(now=now).video_id for _ in range(4)]
    seen, after = [], None
    while True:
        page = jobs.list_videos(now=now, base_url=BASE, after=after, limit=1, order="asc")
        seen += [v["id"] for v in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == ids


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "order=up", "after=video_nope"])
def test_list_rejects_bad_parameters(client, query):
    response = client.get(f"/sandbox/v1/videos?{query}", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == query.split("=")[0]


def test_an_empty_list(client):
    assert client.get("/sandbox/v1/videos", headers=AUTH).json() == {
        "object": "list",
        "data": [],
        "has_more": False,
        "first_id": None,
        "last_id": None,
    }


def test_delete_then_get_is_404(client):
    video = jobs.create_video()
    response = client.delete(f"/sandbox/v1/videos/{video.video_id}", headers=AUTH)
    assert response.json() == {"id": video.video_id, "object": "video.deleted", "deleted": True}
    assert client.get(f"/sandbox/v1/videos/{video.video_id}", headers=AUTH).status_code == 404
    assert client.delete(f"/sandbox/v1/videos/{video.video_id}", headers=AUTH).status_code == 404
    assert client.get("/sandbox/v1/videos", headers=AUTH).json()["data"] == []


def test_remix_creates_a_new_video_from_a_completed_one(client):
    source = past_video(200, model="kling-1", size="720x1280", duration_seconds=40, outcome="completed")
    response = client.post(
        f"/sandbox/v1/videos/{source.video_id}/remix",
        {"prompt": "now at night"},
        content_type="application/json",
        headers=AUTH,
    )
    assert response.status_code == 200
    data = response.json()
    assert data["remixed_from_video_id"] == source.video_id
    assert data["id"] != source.video_id
    remix = SandboxVideo.objects.get(video_id=data["id"])
    assert (remix.prompt, remix.model, remix.size) == ("now at night", "kling-1", "720x1280")


def test_remix_refuses_an_unfinished_video(client):
    source = jobs.create_video(duration_seconds=60)
    response = client.post(f"/sandbox/v1/videos/{source.video_id}/remix", {"prompt": "x"}, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "video_not_ready"


def test_wrong_methods_are_refused(client):
    assert client.put("/sandbox/v1/videos", headers=AUTH).status_code == 405
    assert client.get("/sandbox/v1/videos/video_x/remix", headers=AUTH).status_code == 405


# The demo seed


@pytest.fixture
def sandbox_on(settings):
    settings.VIDEO_SANDBOX = True


def test_seed_demo_refuses_without_the_sandbox(settings):
    settings.VIDEO_SANDBOX = False
    with pytest.raises(CommandError, match="VIDEO_SANDBOX"):
        call_command("seed_demo", stdout=StringIO())
    assert not VideoTask.objects.exists()


def test_seed_demo_creates_the_user_and_a_batch_of_tasks(sandbox_on):
    out = StringIO()
    call_command("seed_demo", "--port", "8123", stdout=out)
    text = out.getvalue()

    password = re.search(r"Demo login: username demo, password (\S+)", text).group(1)
    # A sign-in comes with its request: django-axes refuses to judge one without it.
    demo = authenticate(RequestFactory().post("/accounts/login/"), username="demo", password=password)
    assert demo is not None
    assert demo.is_staff
    assert "http://127.0.0.1:8123/" in text

    tasks = list(VideoTask.objects.filter(owner__username="demo"))
    assert len(tasks) == 6
    videos = SandboxVideo.objects.filter(video_id__in=[t.task_id for t in tasks])
    assert videos.count() == 6
    assert videos.filter(outcome="completed").count() >= 2
    assert videos.filter(outcome="failed").count() >= 1
    assert set(videos.values_list("vocabulary", flat=True)) == {"openai", "gateway"}
    assert min(v.duration_seconds for v in videos) <= 45
    assert max(v.duration_seconds for v in videos) <= 120
    for task in tasks:
        assert task.label.startswith("Demo: ")
        assert (task.status, task.next_poll_at) == ("pending", None)
        event = task.events.get()
        assert (event.kind, event.status, event.message) == (
            TaskEvent.Kind.TRACKED,
            "pending",
            "Tracked from the demo seed.",
        )


def test_seed_demo_again_resets_the_password_and_adds_only_with_more(sandbox_on):
    call_command("seed_demo", stdout=StringIO())
    out = StringIO()
    call_command("seed_demo", "--password", "a-chosen-password", stdout=out)
    assert "Demo login: username demo, password a-chosen-password" in out.getvalue()
    assert "Demo: sunset over the harbour" in out.getvalue()
    sign_in = RequestFactory().post("/accounts/login/")
    assert authenticate(sign_in, username="demo", password="a-chosen-password") is not None
    assert VideoTask.objects.count() == 6

    call_command("seed_demo", "--more", stdout=StringIO())
    assert VideoTask.objects.count() == 12
    assert SandboxVideo.objects.count() == 12

    # Once everything has finished, the next `make run` brings a fresh batch to watch.
    VideoTask.objects.update(status="completed")
    call_command("seed_demo", stdout=StringIO())
    assert VideoTask.objects.active().count() == 6


def test_seed_demo_does_not_wait_for_tasks_whose_sandbox_video_is_gone(sandbox_on):
    # A database from before the sandbox app: its demo videos were dropped with the old table.
    call_command("seed_demo", stdout=StringIO())
    SandboxVideo.objects.all().delete()

    call_command("seed_demo", stdout=StringIO())
    assert VideoTask.objects.active().count() == 12
    assert SandboxVideo.objects.count() == 6


def test_a_signed_link_serves_the_video_without_the_key_until_it_expires(client, settings):
    settings.VIDEO_API_KEY = "sk-sandbox-secret"
    video = past_video(300, duration_seconds=60, outcome="completed")
    link = jobs.content_url(video, "http://testserver/sandbox/v1").removeprefix("http://testserver")
    response = client.get(link)  # no Authorization header: a browser following the link
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    assert b"".join(response.streaming_content)[4:8] == b"ftyp"
    # The link is stable across polls, so the poller does not see it change.
    assert jobs.content_url(video, "http://testserver/sandbox/v1").endswith(link)
    tampered = link.replace("expires=", "expires=9")
    assert client.get(tampered).status_code == 401
    other = past_video(300, duration_seconds=60, outcome="completed")
    assert client.get(link.replace(video.video_id, other.video_id)).status_code == 401
    expired = past_video(2 * 3600, duration_seconds=60, outcome="completed")
    old_link = jobs.content_url(expired, "http://testserver/sandbox/v1").removeprefix("http://testserver")
    assert client.get(old_link).status_code == 401
