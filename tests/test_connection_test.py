"""A connection's Test button against a real provider on loopback: each outcome in plain
words, what the provider actually received, and the key never on the page."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from teams.models import ProviderConnection, Role, Workspace
from tests.fake_provider import FakeProvider, LoopbackServer, Reply
from tests.pages import HX, join

KEY = "sk-test-button-key-9Xq2Lw"


@pytest.fixture
def allowed(settings, provider: FakeProvider) -> FakeProvider:
    """The fake provider's loopback host:port, listed by the operator."""
    settings.VIDEO_FETCH_ALLOW_HOSTS = [provider.base_url.split("/")[2]]
    return provider


def connect(workspace: Workspace, base_url: str, key: str = KEY) -> ProviderConnection:
    connection = ProviderConnection(workspace=workspace, name="Gateway", base_url=base_url)
    connection.set_api_key(key)
    connection.save()
    return connection


def press_test(client, connection: ProviderConnection, *, htmx: bool = True) -> str:
    """Press Test: the row htmx swaps in, or (without JS) the list page the redirect leads to."""
    url = f"/w/{connection.workspace.slug}/connections/{connection.pk}/test/"
    if htmx:
        response = client.post(url, headers=HX)
        assert response.status_code == 200
    else:
        response = client.post(url, follow=True)
        assert response.redirect_chain == [(f"/w/{connection.workspace.slug}/connections/", 302)]
    html = response.content.decode()
    assert KEY not in html
    return html


def listing(**extra) -> Reply:
    return Reply(200, {"object": "list", "data": [], "has_more": False, **extra})


def test_reached(signed_in, team, allowed):
    allowed.script("GET /videos", listing())
    connection = connect(team, allowed.base_url)
    html = press_test(signed_in, connection)
    assert "Reached: this is an OpenAI-compatible video API" in html
    assert html.lstrip().startswith(f'<tr id="connection-{connection.pk}"')  # the row, for the swap
    [seen] = allowed.requests
    assert seen.method == "GET" and seen.raw_path.startswith("/v1/videos?") and "limit=1" in seen.raw_path
    assert seen.authorization == f"Bearer {KEY}"


def test_without_javascript_the_outcome_is_a_message_on_the_list(signed_in, team, allowed):
    allowed.script("GET /videos", listing())
    connection = connect(team, allowed.base_url)
    html = press_test(signed_in, connection, htmx=False)
    assert "Gateway: Reached: this is an OpenAI-compatible video API" in html
    assert "<h1>Provider connections</h1>" in html


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}),
         "The provider refused the key (HTTP 401)."),
        (Reply(403, {"error": {"message": "forbidden"}}), "The provider refused the key (HTTP 403)."),
        (Reply(429, {"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}}),
         "The account is out of quota or credit."),
        (Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "20"}),
         "Rate limited right now, but the key was accepted."),
        (Reply(200, body=b"<!doctype html><title>Welcome</title>", headers={"Content-Type": "text/html"}),
         "not an OpenAI-compatible video API: The provider answered 200 with an HTML page"),
        (Reply(200, {"models": ["a", "b"]}),
         "not an OpenAI-compatible video API: The provider answered 200 without a usable"),
        (Reply(503, {"error": {"message": "upstream down"}}),
         "Reached the provider, but it is failing right now (HTTP 503)"),
        (Reply(302, headers={"Location": "https://login.example.com/"}),
         "Reached something, but not an OpenAI-compatible video API: The provider redirected"),
    ],
)  # fmt: skip
def test_each_answer_in_plain_words(signed_in, team, allowed, reply, words):
    allowed.script("GET /videos", reply)
    connection = connect(team, allowed.base_url)
    html = press_test(signed_in, connection)
    assert words in html
    assert "Reached: this is" not in html
    assert len(allowed.requests) == 1


def test_the_providers_echo_of_the_key_is_scrubbed_in_both_ways_of_showing_it(signed_in, team, allowed):
    allowed.script("GET /videos", Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}}))
    connection = connect(team, allowed.base_url)
    for htmx in (True, False):
        html = press_test(signed_in, connection, htmx=htmx)
        assert "Incorrect API key provided: [key]" in html
        assert KEY[:12] not in html


def test_a_base_url_without_the_version_prefix_says_so(signed_in, team, allowed):
    # The fake provider serves /v1/videos; /videos is a 404 there, as on a real gateway.
    connection = connect(team, allowed.base_url.removesuffix("/v1"))
    html = press_test(signed_in, connection)
    assert "not an OpenAI-compatible video API" in html and "HTTP 404" in html
    assert "Check the version prefix in the base URL" in html
    assert allowed.requests[0].raw_path.startswith("/videos?")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused(signed_in, team, settings):
    port = free_port()  # nothing listens there any more
    settings.VIDEO_FETCH_ALLOW_HOSTS = [f"127.0.0.1:{port}"]
    connection = connect(team, f"http://127.0.0.1:{port}/v1")
    html = press_test(signed_in, connection)
    assert "Could not reach the provider: the connection was refused" in html


def test_a_host_that_does_not_resolve(signed_in, team, settings):
    settings.VIDEO_FETCH_ALLOW_HOSTS = []
    connection = connect(team, "https://no-such-gateway.invalid/v1")  # .invalid never resolves
    html = press_test(signed_in, connection)
    assert "Could not reach the provider: no-such-gateway.invalid does not resolve (DNS)." in html


def test_tls_to_a_server_that_speaks_plain_http(signed_in, team, allowed):
    connection = connect(team, allowed.base_url.replace("http://", "https://"))
    html = press_test(signed_in, connection)
    assert "Could not reach the provider: the TLS handshake failed" in html


def test_a_provider_that_does_not_answer_in_time(signed_in, team, allowed, settings):
    settings.VIDEO_API_TIMEOUT = 1
    allowed.script("GET /videos", Reply(delay=3))
    connection = connect(team, allowed.base_url)
    html = press_test(signed_in, connection)
    assert "Could not reach the provider: no answer within 1 s." in html


def test_a_key_that_can_no_longer_be_decrypted(signed_in, team, allowed):
    connection = connect(team, allowed.base_url)
    # Stored under a key the deployment has since dropped.
    lost = Fernet(Fernet.generate_key()).encrypt(KEY.encode()).decode()
    ProviderConnection.objects.filter(pk=connection.pk).update(api_key_encrypted=lost)
    html = press_test(signed_in, connection)
    assert "The stored key can no longer be decrypted; enter it again." in html
    assert allowed.requests == []


def test_a_loopback_host_the_operator_did_not_allow_is_not_contacted(signed_in, team, provider, settings):
    """Checked again at Test: an allowance withdrawn after the save holds from then on."""
    settings.VIDEO_FETCH_ALLOW_HOSTS = []
    connection = connect(team, provider.base_url)
    html = press_test(signed_in, connection)
    assert "Not tested: 127.0.0.1 leads to a loopback address" in html
    assert "VIDEO_FETCH_ALLOW_HOSTS" in html
    assert provider.requests == []


def test_a_name_that_now_resolves_to_a_private_address_is_not_contacted(signed_in, team, monkeypatch):
    from teams import connection_forms

    monkeypatch.setattr(connection_forms, "resolve", lambda host, port: ["10.20.30.40"])
    connection = connect(team, "https://rebound.example.com/v1")
    html = press_test(signed_in, connection)
    assert "Not tested: rebound.example.com leads to a private address" in html


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_only_managers_may_test(client, team, teammate, allowed, role):
    join(team, teammate, role)
    connection = connect(team, allowed.base_url)
    client.force_login(teammate)
    response = client.post(f"/w/team/connections/{connection.pk}/test/", headers=HX)
    assert response.status_code == 403
    assert allowed.requests == []


def test_a_get_does_not_test(signed_in, team, allowed):
    connection = connect(team, allowed.base_url)
    assert signed_in.get(f"/w/team/connections/{connection.pk}/test/").status_code == 405
    assert allowed.requests == []


class _OneShot(LoopbackServer):
    """Answers every request with a 200 list, and records the Host it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.hosts: list[str] = []

    def _handle(self, handler) -> None:
        self.hosts.append(handler.headers.get("Host", ""))
        body = b'{"data": [{"id": "video_1"}]}'
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@pytest.fixture
def named_server(settings) -> Iterator[_OneShot]:
    server = _OneShot().start()
    yield server
    server.stop()


def test_an_allowed_host_name_is_reached(signed_in, team, settings, named_server):
    """An operator's allowance by name (any port): "localhost" resolves to loopback, allowed."""
    port = named_server.server.server_address[1]
    settings.VIDEO_FETCH_ALLOW_HOSTS = ["localhost"]
    connection = connect(team, f"http://localhost:{port}/v1")
    html = press_test(signed_in, connection)
    assert "Reached: this is an OpenAI-compatible video API" in html
    assert named_server.hosts == [f"localhost:{port}"]
