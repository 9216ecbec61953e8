"""A workspace connection's base URL is typed by a manager, not by the operator: whatever
its host name resolves to when it is used, the dashboard connects only to public addresses,
unless an operator listed the host in VIDEO_FETCH_ALLOW_HOSTS. Checked on the socket's
actual peer, so a name that resolved to a public address when the connection was saved and
points at loopback now (DNS changed, or rebinding) reaches nothing."""

from __future__ import annotations

import pytest

from teams.models import ProviderConnection
from tests.fake_provider import FakeProvider, Reply
from videos import downloads
from videos.client import TransientError, VideoAPIClient
from videos.models import Status, VideoTask
from videos.safe_fetch import FetchRefused

KEY = "sk-workspace-0123456789abcdef"


@pytest.fixture
def internal(provider: FakeProvider, team, settings) -> ProviderConnection:
    """A connection on a loopback provider, saved past the form's check (as if its name
    had resolved to a public address then), and not allowed by the operator."""
    settings.VIDEO_FETCH_ALLOW_HOSTS = []  # the provider fixture allows it: not here
    made = ProviderConnection(workspace=team, name="internal", base_url=provider.base_url)
    made.set_api_key(KEY)
    made.save()
    provider.script("video_1", Reply(200, {"id": "video_1", "status": "in_progress", "progress": 10}))
    return made


def test_the_api_client_does_not_connect_to_a_private_address(internal, provider):
    with VideoAPIClient.for_connection(internal) as client, pytest.raises(TransientError) as refused:
        client.retrieve("video_1")
    assert "loopback" in str(refused.value) and "VIDEO_FETCH_ALLOW_HOSTS" in str(refused.value)
    assert KEY not in str(refused.value)
    assert provider.requests == []


def test_the_poller_sends_nothing_there_and_says_why(internal, provider, owner):
    from videos.polling import Poller

    task = VideoTask.objects.create(
        owner=owner, workspace=internal.workspace, connection=internal, task_id="video_1"
    )
    poller = Poller.from_settings()
    try:
        poller.run_pass()
    finally:
        poller.close()
    task.refresh_from_db()
    assert provider.requests == []
    assert task.status == Status.PENDING
    assert "loopback" in task.last_error


def test_downloads_and_kept_copies_do_not_fetch_from_a_private_address(internal, provider, owner):
    task = VideoTask.objects.create(
        owner=owner,
        workspace=internal.workspace,
        connection=internal,
        task_id="video_1",
        status=Status.COMPLETED,
        progress=100,
    )
    with pytest.raises(FetchRefused):
        downloads.open_remote(task)
    assert provider.requests == []


def test_an_operator_may_allow_the_host(internal, provider, settings):
    settings.VIDEO_FETCH_ALLOW_HOSTS = ["127.0.0.1"]
    with VideoAPIClient.for_connection(internal) as client:
        assert client.retrieve("video_1").payload["progress"] == 10
    assert [seen.authorization for seen in provider.requests] == [f"Bearer {KEY}"]


def test_the_deployments_own_provider_is_the_operators_choice(configured):
    # VIDEO_API_BASE_URL is set by the operator: loopback is fine there, as before.
    configured.script("video_1", Reply(200, {"id": "video_1", "status": "queued"}))
    with VideoAPIClient.for_connection(None) as client:
        assert client.retrieve("video_1").payload["status"] == "queued"
