"""The "New video", remix and delete-at-the-provider pages, through Django's test client,
against a real provider on loopback."""

from __future__ import annotations

import json

import pytest

from tests.fake_provider import Reply, video
from videos.models import Status, Submission, TaskEvent, VideoTask

HX = {"HX-Request": "true"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def configured(configured, settings):
    settings.VIDEO_MODELS = ["veo-3", "kling-v2"]
    settings.VIDEO_SIZES = ["1280x720", "720x1280"]
    settings.VIDEO_SECONDS = []
    return configured


def test_the_form_offers_the_configured_lists(configured, signed_in):
    html = signed_in.get("/").content.decode()
    assert '<option value="veo-3">veo-3</option>' in html
    assert '<option value="720x1280">720x1280</option>' in html
    assert 'name="seconds"' in html  # free text: no list configured
    assert "sora" not in html.lower()


def test_starting_a_video_tracks_it_at_once(configured, signed_in, owner):
    configured.script("POST /videos", video("video_started", "queued", 0, model="veo-3"))
    response = signed_in.post(
        "/videos/new/",
        {"prompt": "Waves at dusk", "model": "veo-3", "size": "1280x720", "seconds": "8"},
        headers=HX,
    )
    html = response.content.decode()
    assert "Video started: now tracking" in html
    task = VideoTask.objects.get(owner=owner, task_id="video_started")
    assert f'id="task-{task.pk}"' in html  # the list is redrawn out of band
    assert task.events.filter(kind=TaskEvent.Kind.TRACKED).exists()
    (sent,) = configured.requests
    assert json.loads(sent.body) == {
        "prompt": "Waves at dusk",
        "model": "veo-3",
        "seconds": "8",
        "size": "1280x720",
    }


def test_a_reference_image_is_sent_as_multipart(configured, signed_in):
    from django.core.files.uploadedfile import SimpleUploadedFile

    configured.script("POST /videos", video("video_ref", "queued", 0))
    upload = SimpleUploadedFile("ref.png", PNG, content_type="image/png")
    signed_in.post(
        "/videos/new/", {"prompt": "Animate", "model": "veo-3", "input_reference": upload}, headers=HX
    )
    (sent,) = configured.requests
    assert sent.content_type.startswith("multipart/form-data")
    assert PNG in sent.body


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"prompt": "", "model": "veo-3"}, "This field is required."),
        ({"prompt": "x", "model": "sora-2"}, "Select a valid choice."),
        ({"prompt": "x", "model": "veo-3", "size": "big"}, "Select a valid choice."),
        ({"prompt": "x", "model": "veo-3", "seconds": "ten"}, "number of seconds"),
    ],
)
def test_a_bad_form_sends_nothing(configured, signed_in, data, error):
    html = signed_in.post("/videos/new/", data, headers=HX).content.decode()
    assert error in html
    assert configured.requests == []
    assert not Submission.objects.exists()


def test_a_reference_that_is_not_an_image_is_refused(configured, signed_in):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("evil.png", b"<script>alert(1)</script>", content_type="image/png")
    html = signed_in.post(
        "/videos/new/", {"prompt": "x", "model": "veo-3", "input_reference": upload}, headers=HX
    ).content.decode()
    assert "must be a PNG, JPEG or WebP image" in html
    assert configured.requests == []


def test_a_provider_refusal_is_shown_next_to_the_form(configured, signed_in):
    configured.script(
        "POST /videos",
        Reply(400, {"error": {"message": "<b>Prompt</b> violates policy", "code": "moderation_blocked"}}),
    )
    html = signed_in.post("/videos/new/", {"prompt": "x", "model": "veo-3"}, headers=HX).content.decode()
    assert "safety system refused this request" in html
    assert "&lt;b&gt;Prompt&lt;/b&gt; violates policy" in html
    assert "Recent attempts" in html


def test_a_lost_answer_is_shown_as_unknown_and_not_resent(configured, signed_in, settings):
    configured.script("POST /videos", Reply(reset=True))
    html = signed_in.post("/videos/new/", {"prompt": "x", "model": "veo-3"}, headers=HX).content.decode()
    assert "Submission unknown" in html
    assert "not sent again" in html
    assert len(configured.requests) == 1


def test_remix_from_the_task_page(configured, signed_in, owner):
    source = VideoTask.objects.create(owner=owner, task_id="video_src", status=Status.COMPLETED, progress=100)
    assert "Remix with a new prompt" in signed_in.get(f"/tasks/{source.pk}/").content.decode()
    configured.script("POST /videos/video_src/remix", video("video_rmx", "queued", 0))
    response = signed_in.post(f"/tasks/{source.pk}/remix/", {"prompt": "At night"})
    remix = VideoTask.objects.get(task_id="video_rmx")
    assert response["Location"] == f"/tasks/{remix.pk}/"
    assert remix.remixed_from == source
    assert "Remixed from" in signed_in.get(f"/tasks/{remix.pk}/").content.decode()


def test_an_unfinished_video_cannot_be_remixed(configured, signed_in, owner):
    task = VideoTask.objects.create(owner=owner, task_id="video_busy", status=Status.PROCESSING)
    signed_in.post(f"/tasks/{task.pk}/remix/", {"prompt": "x"})
    assert configured.requests == []


def test_delete_at_the_provider_confirms_then_deletes(configured, signed_in, owner):
    task = VideoTask.objects.create(
        owner=owner, task_id="video_del", status=Status.COMPLETED, url="https://cdn.example/d.mp4"
    )
    confirm = signed_in.get(f"/tasks/{task.pk}/delete-remote/").content.decode()
    assert "Delete the video at the provider?" in confirm
    assert configured.requests == []
    configured.script("DELETE /videos/video_del", Reply(200, {"id": "video_del", "deleted": True}))
    signed_in.post(f"/tasks/{task.pk}/delete-remote/")
    task.refresh_from_db()
    assert task.remote_deleted_at is not None
    assert task.polling_stopped
    assert task.url == ""
    assert VideoTask.objects.filter(pk=task.pk).exists()  # still tracked: a separate action
    (seen,) = configured.requests
    assert (seen.method, seen.raw_path) == ("DELETE", "/v1/videos/video_del")


def test_someone_elses_task_cannot_be_remixed_or_deleted(configured, client, owner, outsider):
    task = VideoTask.objects.create(owner=owner, task_id="video_mine", status=Status.COMPLETED)
    client.force_login(outsider)
    assert client.post(f"/tasks/{task.pk}/remix/", {"prompt": "x"}).status_code == 404
    assert client.post(f"/tasks/{task.pk}/delete-remote/").status_code == 404
    assert client.get(f"/tasks/{task.pk}/delete-remote/").status_code == 404
    assert configured.requests == []
