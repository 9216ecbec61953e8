"""Kept copies in an S3-compatible bucket through django-storages, against a real S3 API
server on loopback (moto's standalone server): what a PaaS deployment uses, since its disk
does not survive a restart."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import timedelta

import boto3
import pytest
from django.utils import timezone

from tests.fake_provider import Reply
from videos import keep
from videos.models import KeepState, Status, VideoTask

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"s3-frames" * 2000


@pytest.fixture(scope="module")
def s3_endpoint():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert time.monotonic() < deadline, "the S3 server did not start"
            time.sleep(0.1)
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


def store_in_bucket(settings, endpoint: str, name: str) -> None:
    """Make the S3 server's bucket `name` Django's default storage for this test."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "access_key": "test",
                "secret_key": "test",
                "default_acl": None,
                "file_overwrite": False,
            },
        },
    }


@pytest.fixture
def bucket(settings, s3_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no metadata lookups, ever
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    name = f"kept-{time.monotonic_ns()}"
    s3.create_bucket(Bucket=name)
    store_in_bucket(settings, s3_endpoint, name)
    # Django's setting_changed handler swaps default_storage over (and back afterwards).
    return s3, name


def test_a_copy_is_kept_in_the_bucket_and_served_from_it(bucket, settings, provider, owner, client):
    s3, name = bucket
    settings.VIDEO_API_BASE_URL = provider.base_url
    settings.VIDEO_API_KEY = "sk-s3"
    task = VideoTask.objects.create(
        owner=owner,
        task_id="video_s3",
        status=Status.COMPLETED,
        progress=100,
        keep_state=KeepState.WAITING,
        next_keep_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    provider.script(
        "GET /videos/video_s3/content",
        Reply(200, body=VIDEO, headers={"Content-Type": "video/mp4"}),
        Reply(404, {"error": {"message": "no thumbnail"}}),
    )
    assert keep.run() == 1
    task.refresh_from_db()
    assert task.keep_state == KeepState.KEPT
    stored = s3.get_object(Bucket=name, Key=task.kept_file.name)["Body"].read()
    assert stored == VIDEO

    VideoTask.objects.filter(pk=task.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client.force_login(owner)
    response = client.get(f"/tasks/{task.pk}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == VIDEO
