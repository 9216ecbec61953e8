"""Retry with the same settings, and Start again / Duplicate, from a task's page: what a
video was started with is shown, a failed one is started again once (one create at the
provider, links both ways, an audit entry), and a retry that cannot be says why and sends
nothing. Against the fake provider on loopback."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from teams.models import AuditEntry
from tests.fake_provider import Reply, video
from tests.pages import join
from videos.models import Status, Submission, VideoTask

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
SETTINGS = {"prompt": "Waves at dusk", "model": "veo-3", "size": "1280x720", "seconds": "8"}


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def start(client: Client, provider, task_id: str, **fields) -> VideoTask:
    """A video started from the team's board, the way a person does it."""
    provider.script("POST /videos", video(task_id, "queued", 0))
    client.post("/w/team/videos/new/", {**SETTINGS, **fields})
    return VideoTask.objects.get(task_id=task_id)


def fail(task: VideoTask) -> VideoTask:
    task.status = Status.FAILED
    task.error_code = "internal_error"
    task.error_message = "Something went wrong, please retry."
    task.save()
    return task


def creates(provider) -> list:
    return [seen for seen in provider.requests if seen.method == "POST"]


@pytest.fixture
def started(configured, team, owner):
    client = as_user(owner)
    return client, fail(start(client, configured, "video_first"))


def test_a_task_started_here_shows_what_it_was_started_with(started):
    client, task = started
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "Started with" in page
    for value in ("Waves at dusk", "veo-3", "1280x720", "Deployment default"):
        assert value in page
    assert "Retry with the same settings" in page
    assert f'href="/tasks/{task.pk}/duplicate/"' in page


def test_a_retry_sends_one_create_with_the_same_settings_and_links_both_ways(started, configured):
    client, task = started
    configured.script("POST /videos", video("video_again", "queued", 0))
    response = client.post(f"/tasks/{task.pk}/retry/")
    again = VideoTask.objects.get(task_id="video_again")
    assert response["Location"] == f"/tasks/{again.pk}/"
    first, second = creates(configured)
    assert json.loads(second.body) == json.loads(first.body) == SETTINGS
    assert again.workspace == task.workspace and again.connection_id is None
    new_page = client.get(f"/tasks/{again.pk}/").content.decode()
    assert f'Retry of <a href="/tasks/{task.pk}/">video_first</a>' in new_page
    old_page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert f'Retried as <a href="/tasks/{again.pk}/">video_again</a>' in old_page
    assert "Retry with the same settings" not in old_page
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.STARTED, target="video_again")
    assert entry.detail.startswith("retry of video_first")


def test_a_second_retry_is_refused_and_says_why(started, configured):
    client, task = started
    configured.script("POST /videos", video("video_again", "queued", 0))
    client.post(f"/tasks/{task.pk}/retry/")
    response = client.post(f"/tasks/{task.pk}/retry/", follow=True)
    assert "already retried as video_again" in response.content.decode()
    assert len(creates(configured)) == 2  # the start and one retry, no more


def test_a_refused_retry_says_why_and_may_be_tried_again(started, configured):
    client, task = started
    configured.script(
        "POST /videos", Reply(400, {"error": {"message": "blocked", "code": "moderation_blocked"}})
    )
    page = client.post(f"/tasks/{task.pk}/retry/", follow=True).content.decode()
    assert "Not retried: The provider&#x27;s safety system refused this request" in page
    assert Submission.objects.get(retry_of=task).state == Submission.State.REJECTED
    # Nothing was made, so the failed task still offers its retry.
    assert "Retry with the same settings" in page and "Retried as" not in page


def test_a_video_started_with_a_reference_offers_duplicate_instead(configured, team, owner):
    client = as_user(owner)
    upload = SimpleUploadedFile("ref.png", PNG, content_type="image/png")
    task = fail(start(client, configured, "video_ref", input_reference=upload))
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "ref.png" in page and "Retry with the same settings" not in page
    assert "reference image, which is not kept: use Duplicate" in page
    answer = client.post(f"/tasks/{task.pk}/retry/", follow=True).content.decode()
    assert "Not retried: This video was started with a reference image" in answer
    assert len(creates(configured)) == 1


def test_only_a_failed_video_is_retried(configured, team, owner):
    client = as_user(owner)
    task = start(client, configured, "video_running")
    answer = client.post(f"/tasks/{task.pk}/retry/", follow=True).content.decode()
    assert "Only a failed video can be retried." in answer
    assert len(creates(configured)) == 1


def test_a_tracked_task_has_no_settings_to_retry_or_duplicate(configured, team, owner):
    client = as_user(owner)
    client.post("/w/team/track/", {"task_ids": "video_pasted"})
    task = fail(VideoTask.objects.get(task_id="video_pasted"))
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "Started with" not in page and "Retry with the same settings" not in page
    assert "/duplicate/" not in page
    answer = client.post(f"/tasks/{task.pk}/retry/", follow=True).content.decode()
    assert "not started here" in answer
    assert client.get(f"/tasks/{task.pk}/duplicate/")["Location"] == f"/tasks/{task.pk}/"
    assert configured.requests == []


def test_a_failed_remix_is_retried_as_the_same_remix(configured, team, owner):
    client = as_user(owner)
    source = VideoTask.objects.create(
        owner=owner, workspace=team, task_id="video_src", status=Status.COMPLETED, progress=100
    )
    configured.script("POST /videos/video_src/remix", video("video_rmx", "queued", 0))
    client.post(f"/tasks/{source.pk}/remix/", {"prompt": "At night"})
    remix = fail(VideoTask.objects.get(task_id="video_rmx"))
    configured.script("POST /videos/video_src/remix", video("video_rmx2", "queued", 0))
    client.post(f"/tasks/{remix.pk}/retry/")
    first, second = creates(configured)
    assert second.raw_path == first.raw_path and json.loads(second.body) == {"prompt": "At night"}
    assert VideoTask.objects.get(task_id="video_rmx2").remixed_from == source


@pytest.mark.parametrize(
    ("role", "allowed", "status"),
    [
        ("owner", True, 302),
        ("manager", True, 302),
        ("member", True, 302),
        ("viewer", False, 403),
        ("outsider", False, 404),
    ],
)
def test_who_may_retry_and_duplicate(started, configured, team, role, allowed, status):
    _client, task = started
    person = get_user_model().objects.create_user(f"someone-{role}")
    if role != "outsider":
        join(team, person, role)
    configured.script("POST /videos", video("video_again", "queued", 0))
    client = as_user(person)
    assert client.post(f"/tasks/{task.pk}/retry/").status_code == status
    assert client.get(f"/tasks/{task.pk}/duplicate/").status_code == (200 if allowed else status)
    assert len(creates(configured)) == (2 if allowed else 1)
    assert Submission.objects.filter(retry_of=task).exists() == allowed
    page = client.get(f"/tasks/{task.pk}/")
    if role == "viewer":
        assert "Retry with the same settings" not in page.content.decode()


def test_duplicate_opens_the_create_form_prefilled_and_starts_the_edited_video(started, configured):
    client, task = started
    page = client.get(f"/tasks/{task.pk}/duplicate/").content.decode()
    assert 'action="/w/team/videos/new/"' in page
    assert ">\nWaves at dusk</textarea>" in page
    assert 'name="model" value="veo-3"' in page
    assert 'name="seconds" value="8"' in page
    assert 'name="size" value="1280x720"' in page
    configured.script("POST /videos", video("video_dup", "queued", 0))
    client.post("/w/team/videos/new/", {**SETTINGS, "prompt": "Waves at dawn"})
    assert json.loads(creates(configured)[-1].body)["prompt"] == "Waves at dawn"
    assert VideoTask.objects.filter(task_id="video_dup", workspace=task.workspace).exists()


def test_a_completed_video_makes_download_and_remix_the_primary_actions(configured, team, owner):
    client = as_user(owner)
    task = start(client, configured, "video_done")
    VideoTask.objects.filter(pk=task.pk).update(status=Status.COMPLETED, progress=100)
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert 'class="download button primary"' in page
    assert '<button type="submit" class="primary">Remix</button>' in page
    assert '<button type="submit" class="danger quiet">Delete at the provider</button>' in page
    assert '<button type="submit" class="danger quiet">Stop tracking</button>' in page


def test_a_video_started_through_the_api_shows_its_settings_and_retries(configured, team, owner):
    from api.models import ApiKey

    _key, plaintext = ApiKey.issue(team, "ci", read_only=False, created_by=owner)
    configured.script("POST /videos", video("video_api", "queued", 0))
    answer = Client().post(
        "/api/v1/videos",
        json.dumps({"prompt": "From a script", "model": "kling-v2", "size": "720x1280"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {plaintext}"},
    )
    assert answer.status_code == 201, answer.content
    task = fail(VideoTask.objects.get(task_id="video_api"))
    client = as_user(owner)
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "Started with" in page and "From a script" in page and "kling-v2" in page
    configured.script("POST /videos", video("video_api_again", "queued", 0))
    client.post(f"/tasks/{task.pk}/retry/")
    assert json.loads(creates(configured)[-1].body) == {
        "prompt": "From a script",
        "model": "kling-v2",
        "size": "720x1280",
    }
    assert Submission.objects.get(retry_of=task).task.task_id == "video_api_again"
