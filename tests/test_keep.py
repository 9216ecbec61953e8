"""Kept copies against a real HTTP server on loopback: copied before the link expires,
served after it, retried when a copy fails, pruned after the retention period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from tests.fake_provider import PROVIDER_KEY, Reply, video
from videos import keep
from videos.client import VideoAPIClient
from videos.models import KeepState, Status, VideoTask
from videos.polling import Poller

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"frames" * 3000
THUMB = b"\xff\xd8\xff\xe0" + b"jpeg" * 100


def completed(owner, task_id="video_keep", **fields) -> VideoTask:
    now = timezone.now()
    defaults = {
        "status": Status.COMPLETED,
        "progress": 100,
        "keep_state": KeepState.WAITING,
        "next_keep_at": now,
    }
    return VideoTask.objects.create(owner=owner, task_id=task_id, **{**defaults, **fields})


def serve(provider, task_id: str, video_reply: Reply, thumb_reply: Reply | None = None) -> None:
    # Both variants hit the same route; the fake provider answers them in order.
    replies = [video_reply, thumb_reply or Reply(404, {"error": {"message": "no thumbnail"}})]
    provider.script(f"GET /videos/{task_id}/content", *replies)


def test_completion_queues_a_copy(configured, owner):
    task = VideoTask.objects.create(owner=owner, task_id="video_done", status=Status.PROCESSING)
    configured.script("video_done", video("video_done", "completed", 100))
    poller = Poller(VideoAPIClient(configured.base_url, PROVIDER_KEY), interval=5, concurrency=1)
    try:
        poller.run_pass()
    finally:
        poller.close()
    task.refresh_from_db()
    assert task.keep_state == KeepState.WAITING
    assert task.next_keep_at is not None


def test_a_copy_is_kept_and_served_after_the_link_expires(configured, owner, client):
    task = completed(owner, expires_at=timezone.now() + timedelta(hours=1))
    serve(
        configured,
        "video_keep",
        Reply(200, body=VIDEO, headers={"Content-Type": "video/mp4"}),
        Reply(200, body=THUMB, headers={"Content-Type": "image/jpeg"}),
    )
    assert keep.run() == 1
    task.refresh_from_db()
    assert task.keep_state == KeepState.KEPT
    assert task.kept_bytes == len(VIDEO)
    with default_storage.open(task.kept_file.name) as stored:
        assert stored.read() == VIDEO
    with default_storage.open(task.kept_thumbnail.name) as stored:
        assert stored.read() == THUMB
    asked = len(configured.requests)

    # The provider's link has died; the kept copy still plays and downloads.
    VideoTask.objects.filter(pk=task.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client.force_login(owner)
    response = client.get(f"/tasks/{task.pk}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == VIDEO
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Disposition"] == 'attachment; filename="video_keep.mp4"'
    thumb = client.get(f"/tasks/{task.pk}/download/", {"variant": "thumbnail"})
    assert b"".join(thumb.streaming_content) == THUMB
    assert len(configured.requests) == asked  # served from storage, not the provider
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "kept copy" in page
    assert f'poster="/tasks/{task.pk}/download/?variant=thumbnail"' in page
    assert "Kept copies: 1 video" in client.get("/").content.decode()


def test_a_failed_copy_is_retried_with_backoff_and_never_regenerates(configured, owner):
    task = completed(owner)
    serve(configured, "video_keep", Reply(503, {"error": {"message": "busy"}}))
    assert keep.run() == 0
    task.refresh_from_db()
    assert task.keep_state == KeepState.FAILED
    assert task.keep_attempts == 1
    assert task.keep_error == "127.0.0.1 answered HTTP 503."
    assert task.next_keep_at > timezone.now() + timedelta(seconds=30)
    assert keep.run() == 0  # not due yet: no request
    assert len(configured.requests) == 1

    VideoTask.objects.filter(pk=task.pk).update(next_keep_at=timezone.now())
    serve(configured, "video_keep", Reply(200, body=VIDEO, headers={"Content-Type": "video/mp4"}))
    assert keep.run() == 1
    task.refresh_from_db()
    assert task.keep_state == KeepState.KEPT
    # Only the content endpoint was ever asked: nothing created, remixed or polled anew.
    assert {seen.method for seen in configured.requests} == {"GET"}
    assert all(seen.task_id == "GET /videos/video_keep/content" for seen in configured.requests)


def test_a_file_the_provider_no_longer_has_is_not_retried(configured, owner):
    task = completed(owner)
    serve(configured, "video_keep", Reply(404, {"error": {"message": "expired"}}))
    keep.run()
    task.refresh_from_db()
    assert (task.keep_state, task.next_keep_at) == (KeepState.FAILED, None)


def test_a_copy_whose_worker_died_is_taken_up_again(configured, owner, caplog):
    task = completed(owner, keep_state=KeepState.COPYING, next_keep_at=timezone.now() - timedelta(seconds=1))
    assert keep.due() == []  # "copying" is never due as such...
    assert keep.reclaim_stale() == 1  # ...its lease ends and it visibly goes back to waiting
    task.refresh_from_db()
    assert task.keep_state == KeepState.WAITING
    assert "its copy was still running when its lease ended" in caplog.text
    serve(configured, "video_keep", Reply(200, body=VIDEO, headers={"Content-Type": "video/mp4"}))
    assert keep.run() == 1
    task.refresh_from_db()
    assert task.keep_state == KeepState.KEPT


def test_an_error_of_ours_hands_the_copy_back_and_the_others_are_still_made(
    configured, owner, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "thumbnails").write_text("a file where a folder should be")
    broken = completed(owner, "video_broken", next_keep_at=timezone.now() - timedelta(seconds=2))
    fine = completed(owner, "video_fine", next_keep_at=timezone.now() - timedelta(seconds=1))
    serve(
        configured,
        "video_broken",
        Reply(200, body=VIDEO, headers={"Content-Type": "video/mp4"}),
        Reply(200, body=THUMB, headers={"Content-Type": "image/jpeg"}),
    )
    serve(configured, "video_fine", Reply(200, body=VIDEO, headers={"Content-Type": "video/mp4"}))
    started = timezone.now()
    with pytest.raises(OSError, match="not a directory"):
        keep.run()
    broken.refresh_from_db()
    fine.refresh_from_db()
    assert (broken.keep_state, broken.keep_attempts, broken.keep_error) == (KeepState.WAITING, 0, "")
    assert broken.next_keep_at >= started  # behind the copies that were already due
    assert fine.keep_state == KeepState.KEPT
    # The video saved before the thumbnail failed is not left behind.
    assert [path.name for path in (tmp_path / "kept" / "videos").iterdir()] == [
        fine.kept_file.name.rsplit("/")[-1]
    ]


def test_kept_files_are_removed_after_the_retention_period(configured, owner, settings):
    settings.VIDEO_KEEP_DAYS = 7
    task = completed(owner)
    serve(configured, "video_keep", Reply(200, body=VIDEO, headers={"Content-Type": "video/mp4"}))
    keep.run()
    task.refresh_from_db()
    name = task.kept_file.name
    assert keep.prune() == 0  # still young
    VideoTask.objects.filter(pk=task.pk).update(kept_at=timezone.now() - timedelta(days=8))
    assert keep.prune() == 1
    task.refresh_from_db()
    assert task.keep_state == KeepState.REMOVED
    assert not default_storage.exists(name)
