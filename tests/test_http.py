"""What the provider client and SafeFetcher share (videos/http.py): one reading of an HTTP
status, one User-Agent, one CA bundle; and every client a request opens is closed."""

from __future__ import annotations

import pytest

from tests.fake_provider import Reply, video
from videos import client as api
from videos import http
from videos.client import NotFound, VideoAPIClient
from videos.models import Status, VideoTask
from videos.polling import Poller
from videos.safe_fetch import FetchFailed, SafeFetcher

KEY = "sk-http-shared-0123456789"


@pytest.mark.parametrize(
    ("status", "code", "client_error"),
    [
        (404, "", api.NotFound),
        (410, "", api.NotFound),
        (400, "task_not_exist", api.NotFound),
        (401, "", api.AuthError),
        (403, "", api.AuthError),
        (429, "insufficient_quota", api.QuotaExceeded),
        (429, "rate_limit_exceeded", api.RateLimited),
        (408, "", api.TransientError),
        (409, "", api.TransientError),
        (425, "", api.TransientError),
        (500, "", api.TransientError),
        (503, "", api.TransientError),
        (400, "invalid_request", api.PermanentError),
        (422, "", api.PermanentError),
    ],
)
def test_the_client_and_the_fetcher_read_a_status_the_same_way(provider, status, code, client_error):
    provider.script("v", Reply(status, {"error": {"code": code, "message": "no"}}))
    with VideoAPIClient(provider.base_url, KEY, timeout=2.0) as client, pytest.raises(client_error) as caught:
        client.retrieve("v")
    assert caught.value.status_code == status
    assert caught.value.transient is http.classify(status, code).transient
    # A file server's body is not read: the fetcher goes by the status alone.
    fetcher = SafeFetcher(trusted_origins=[provider.base_url], deadline=5.0)
    with pytest.raises(FetchFailed) as fetched:
        fetcher.open(f"{provider.base_url}/videos/v")
    assert fetched.value.status_code == status
    assert fetched.value.transient is http.classify(status).transient


def test_one_user_agent_and_one_ca_bundle(monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))
    assert http.ca_bundle() == str(bundle)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle) + ".first")
    assert http.ca_bundle() == str(bundle) + ".first"
    with VideoAPIClient("https://gateway.example/v1", KEY) as client:
        assert client.session.verify == http.ca_bundle()
        assert client.session.headers["User-Agent"] == http.USER_AGENT
    fetcher = SafeFetcher()
    assert fetcher.ca_certs == http.ca_bundle()
    assert fetcher.user_agent == http.USER_AGENT


def test_without_an_override_the_bundle_is_certifis(monkeypatch):
    import certifi

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert http.ca_bundle() == certifi.where()


def test_from_settings_reads_the_configured_provider(settings):
    settings.VIDEO_API_BASE_URL = "https://gateway.example/v1/"
    settings.VIDEO_API_KEY = KEY
    settings.VIDEO_API_TIMEOUT = 7.0
    settings.VIDEO_API_MAX_RESPONSE_BYTES = 5000
    with VideoAPIClient.from_settings(pool_size=3) as client:
        assert client.base_url == "https://gateway.example/v1"
        assert client.api_key == KEY
        assert client.timeout == 7.0
        assert client.max_response_bytes == 5000


@pytest.fixture
def opened(monkeypatch) -> dict[int, bool]:
    """Every VideoAPIClient made during the test: id → whether it has been closed."""
    clients: dict[int, bool] = {}
    init, close = VideoAPIClient.__init__, VideoAPIClient.close

    def tracked_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        clients[id(self)] = False

    def tracked_close(self):
        close(self)
        clients[id(self)] = True

    monkeypatch.setattr(VideoAPIClient, "__init__", tracked_init)
    monkeypatch.setattr(VideoAPIClient, "close", tracked_close)
    return clients


def test_the_with_block_closes_the_session_even_on_an_error(provider, opened):
    provider.script("v", Reply(404, {}))
    with pytest.raises(NotFound), VideoAPIClient(provider.base_url, KEY) as client:
        client.retrieve("v")
    assert list(opened.values()) == [True]


def test_every_view_closes_the_client_it_opens(configured, signed_in, owner, opened):
    configured.script("POST /videos", video("video_new", "queued", 0))
    signed_in.post("/videos/new/", {"prompt": "Waves", "model": "veo-3"}, headers={"HX-Request": "true"})
    done = VideoTask.objects.create(owner=owner, task_id="video_done", status=Status.COMPLETED, progress=100)
    configured.script("POST /videos/video_done/remix", video("video_rmx", "queued", 0))
    signed_in.post(f"/tasks/{done.pk}/remix/", {"prompt": "At night"})
    configured.script(
        "GET /videos/video_done/content", Reply(200, body=b"mp4", headers={"Content-Type": "video/mp4"})
    )
    download = signed_in.get(f"/tasks/{done.pk}/download/")
    assert b"".join(download.streaming_content) == b"mp4"
    configured.script("DELETE /videos/video_done", Reply(404, {}))  # raises inside the block
    signed_in.post(f"/tasks/{done.pk}/delete-remote/")
    assert [seen.method for seen in configured.requests] == ["POST", "POST", "GET", "DELETE"]
    # Create, remix and delete each open a client; the download none: its bytes come through
    # SafeFetcher with the connection's scoped key (downloads.open_remote), so it no longer
    # builds a client (and a session) only to name a URL.
    assert len(opened) == 3
    assert all(opened.values())


@pytest.mark.parametrize("task_id", ["video_1", "video/dl+1=", "a?b=c%d#e"])
def test_the_download_names_the_content_url_as_the_client_does(task_id):
    from videos.downloads import content_url

    with VideoAPIClient("https://gw.example/v1/", KEY) as client:
        for variant in ("video", "thumbnail"):
            assert content_url("https://gw.example/v1/", task_id, variant) == client.content_url(
                task_id, variant
            )


def test_the_poller_closes_its_client(configured, settings, opened):
    settings.VIDEO_POLL_CONCURRENCY = 2
    poller = Poller.from_settings()
    poller.close()
    assert list(opened.values()) == [True]
