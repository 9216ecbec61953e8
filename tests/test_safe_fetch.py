"""The safe fetcher against real HTTP(S) servers on loopback.

Host names are made up (`.test` is reserved, so real DNS knows none of them) and resolved by
an injected resolver, so every connection the fetcher makes goes through its vetted-address
path. An autouse guard fails any test that tries to connect anywhere but loopback, and
checks that every socket the fetcher opened was closed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from videos.safe_fetch import Download, FetchFailed, FetchRefused, SafeFetcher, forbidden_reason

BODY = bytes(range(256)) * 800  # 204,800 known bytes
SECRET_KEY = "sk-secret-key-0123456789"
SECRET_QUERY = "sig=query-secret-987"


@dataclass
class Seen:
    path: str
    host: str | None
    headers: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(Seen(self.path, self.headers.get("Host"), dict(self.headers.items())))
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        self.close_connection = True
        # Routed by the last path segment, so relative redirects can be tried from any depth.
        route = "route_" + parts.path.rsplit("/", 1)[-1].replace("-", "_")
        # The fetcher hanging up early, as it should when it gives up, is no server error.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            getattr(self, route, self.route_missing)(query)

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()

    def route_missing(self, query: dict[str, str]) -> None:
        self._head(404, {"Content-Length": "0"})

    def route_file(self, query: dict[str, str]) -> None:
        self._head(200, {"Content-Type": "video/mp4", "Content-Length": str(len(BODY))})
        self.wfile.write(BODY)

    def route_chunked(self, query: dict[str, str]) -> None:
        # No Content-Length, no Content-Type: the size is only known by reading.
        size = int(query.get("size", len(BODY)))
        self._head(200, {"Transfer-Encoding": "chunked"})
        sent = 0
        while sent < size:
            piece = BODY[: min(16384, size - sent)]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        self.wfile.write(b"0\r\n\r\n")

    def route_redirect(self, query: dict[str, str]) -> None:
        self._head(int(query.get("status", "302")), {"Location": query["to"], "Content-Length": "0"})

    def route_loop(self, query: dict[str, str]) -> None:
        self._head(302, {"Location": "/loop", "Content-Length": "0"})

    def route_echo_auth(self, query: dict[str, str]) -> None:
        body = ("auth:" + (self.headers.get("Authorization") or "none")).encode()
        self._head(200, {"Content-Type": "text/plain", "Content-Length": str(len(body))})
        self.wfile.write(body)

    def route_status(self, query: dict[str, str]) -> None:
        self._head(int(query["code"]), {"Content-Length": "0"})

    def route_huge(self, query: dict[str, str]) -> None:
        # Declares far more than it sends: the fetcher must refuse on the header alone.
        self._head(200, {"Content-Length": str(10**12)})
        self.wfile.write(b"x" * 10)

    def route_trickle(self, query: dict[str, str]) -> None:
        size = int(query.get("size", "1000"))
        self._head(200, {"Content-Length": str(size)})
        for _ in range(size):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(float(query.get("every", "0.05")))

    def route_silent(self, query: dict[str, str]) -> None:
        self._head(200, {"Content-Length": "10"})
        self.wfile.write(b"x")
        self.wfile.flush()
        time.sleep(float(query.get("for", "1")))

    def route_slow_headers(self, query: dict[str, str]) -> None:
        time.sleep(float(query.get("for", "1")))
        self._head(200, {"Content-Length": "0"})

    def route_trickle_headers(self, query: dict[str, str]) -> None:
        # The status line at once, then one header byte at a time, each well inside any read
        # timeout, for as long as the client listens (or `for` seconds).
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        ends = time.monotonic() + float(query.get("for", "30"))
        while time.monotonic() < ends:
            self.wfile.write(b"a")
            self.wfile.flush()
            time.sleep(float(query.get("every", "0.05")))


class _TLSHandler(_Handler):
    def handle(self) -> None:
        # The handshake runs here, in the handler's thread, so one client that gives up on
        # the certificate cannot stall the accepting thread.
        try:
            self.request.settimeout(3)
            self.request.do_handshake()
        except (OSError, ssl.SSLError):
            return
        super().handle()


class _Server(ThreadingHTTPServer):
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.seen: list[Seen] = []
        self.sni: list[str | None] = []

    @property
    def port(self) -> int:
        return self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-answer are part of these tests


def _serve(server: _Server) -> Iterator[_Server]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(2)


@pytest.fixture
def server() -> Iterator[_Server]:
    yield from _serve(_Server(_Handler))


_serve_ctx = contextlib.contextmanager(lambda: _serve(_Server(_Handler)))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate valid for provider.test only (not for 127.0.0.1)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-days", "2", "-subj", "/CN=provider.test"),
            *("-addext", "subjectAltName=DNS:provider.test", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    cert, key = certificate
    # The fetcher reads the CA bundle the way client.py's session does.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    server = _Server(_TLSHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sslobj, name, ctx: server.sni.append(name)  # type: ignore[assignment]
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    yield from _serve(server)


@dataclass
class FakeDNS:
    """A resolver from a fixed table; a name outside it fails the test (no real DNS)."""

    table: dict[str, list[str]]
    calls: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.table:
            pytest.fail(f"unexpected resolution of {host!r}")
        return list(self.table[host])


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Every connection goes to loopback, and every socket opened is closed by the end."""
    real = socket.create_connection
    opened: list[socket.socket] = []
    targets: list[tuple[str, int]] = []

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            pytest.fail(f"the fetcher connected by name ({host!r}), not by vetted address")
        if not loopback:
            pytest.fail(f"attempted a connection to {host}")
        targets.append(address)
        sock = real(address, *args, **kwargs)
        opened.append(sock)
        return sock

    monkeypatch.setattr(socket, "create_connection", guarded)
    yield targets
    assert [sock for sock in opened if sock.fileno() != -1] == [], "a socket was left open"


@pytest.fixture
def no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        pytest.fail(f"a refused fetch attempted a connection to {address}")

    monkeypatch.setattr(socket, "create_connection", forbidden)


@pytest.fixture
def dns() -> FakeDNS:
    return FakeDNS(
        {
            "provider.test": ["127.0.0.1"],
            "mirror.test": ["127.0.0.1"],  # a second trusted host
            "cdn.test": ["127.0.0.1"],  # untrusted: loopback is off limits for it
        }
    )


@pytest.fixture
def make_fetcher(dns: FakeDNS, request: pytest.FixtureRequest) -> Callable[..., SafeFetcher]:
    # Trust is by origin (scheme, host, port): provider.test and mirror.test on the ports of
    # the servers this test runs, and on the default ports.
    origins = [
        f"{scheme}://{host}" for scheme in ("http", "https") for host in ("provider.test", "mirror.test")
    ]
    for fixture, scheme in (("server", "http"), ("tls_server", "https")):
        if fixture in request.fixturenames:
            port = request.getfixturevalue(fixture).port
            origins += [f"{scheme}://provider.test:{port}", f"{scheme}://mirror.test:{port}"]

    def make(**kwargs: Any) -> SafeFetcher:
        kwargs.setdefault("trusted_origins", origins)
        kwargs.setdefault("resolver", dns)
        kwargs.setdefault("deadline", 5.0)
        kwargs.setdefault("connect_timeout", 1.0)
        kwargs.setdefault("read_timeout", 2.0)
        return SafeFetcher(**kwargs)

    return make


@pytest.fixture
def fetcher(make_fetcher: Callable[..., SafeFetcher]) -> SafeFetcher:
    return make_fetcher()


def read_all(fetcher: SafeFetcher, url: str, **kwargs: Any) -> bytes:
    with fetcher.open(url, **kwargs) as download:
        return b"".join(download.iter_bytes())


def drain(download: Download, sizes: list[int] | None = None, chunk_size: int = 65536) -> None:
    """Read the body to its end, noting each chunk's size in `sizes` as it goes."""
    for chunk in download.iter_bytes(chunk_size):
        if sizes is not None:
            sizes.append(len(chunk))


# 1. Downloads from the trusted provider, through the resolver's address.


def test_streams_a_file_from_a_trusted_host_through_the_resolved_address(server, fetcher, dns, loopback_only):
    with fetcher.open(f"http://provider.test:{server.port}/file") as download:
        assert download.status_code == 200
        assert download.content_type == "video/mp4"
        assert download.content_length == len(BODY)
        chunks = list(download.iter_bytes(chunk_size=50_000))
    assert b"".join(chunks) == BODY
    assert max(len(chunk) for chunk in chunks) <= 50_000
    # provider.test exists only in the fake resolver: the socket went to its answer, while
    # the request still names the host.
    assert dns.calls == [("provider.test", server.port)]
    assert loopback_only == [("127.0.0.1", server.port)]
    (seen,) = server.seen
    assert seen.host == f"provider.test:{server.port}"
    assert seen.headers["User-Agent"] == "video-task-dashboard/0.1"


def test_a_chunked_body_without_length_streams_with_defaults(server, fetcher):
    with fetcher.open(f"http://provider.test:{server.port}/chunked?size=100000") as download:
        assert download.content_length is None
        assert download.content_type == "application/octet-stream"
        assert b"".join(download.iter_bytes()) == BODY[:100_000]


def test_closing_without_reading_releases_the_connection(server, fetcher, loopback_only):
    download = fetcher.open(f"http://provider.test:{server.port}/file")
    download.close()
    download.close()  # idempotent
    assert len(loopback_only) == 1  # and the autouse guard checks that socket is closed


def test_abandoning_the_stream_midway_releases_the_connection(server, fetcher):
    download = fetcher.open(f"http://provider.test:{server.port}/file")
    stream = download.iter_bytes(chunk_size=1000)
    assert len(next(stream)) <= 1000
    stream.close()  # the guard fails the test if the socket stayed open


def test_a_trusted_literal_address_is_fetched_as_in_the_sandbox(server, make_fetcher):
    fetcher = make_fetcher(
        trusted_origins=[f"http://127.0.0.1:{server.port}/sandbox/v1"], resolver=FakeDNS({})
    )
    assert read_all(fetcher, f"http://127.0.0.1:{server.port}/file") == BODY


def test_trusted_origins_match_case_insensitively(server, make_fetcher):
    fetcher = make_fetcher(trusted_origins=[f"HTTP://Provider.Test:{server.port}/v1"])
    assert read_all(fetcher, f"http://PROVIDER.test.:{server.port}/file") == BODY


def test_another_port_of_the_trusted_host_is_not_trusted(server, make_fetcher, no_connection):
    # Under `make run` the provider is 127.0.0.1:8000; every other loopback port is some
    # other service of this machine, and must get the address check like any link.
    fetcher = make_fetcher(trusted_origins=["http://127.0.0.1:8000/sandbox/v1"], resolver=FakeDNS({}))
    with pytest.raises(FetchRefused) as caught:
        fetcher.open(f"http://127.0.0.1:{server.port}/file")
    assert "loopback" in caught.value.reason
    assert server.seen == []


def test_another_scheme_of_the_trusted_host_is_not_trusted(server, make_fetcher, no_connection):
    fetcher = make_fetcher(trusted_origins=[f"https://provider.test:{server.port}"])
    with pytest.raises(FetchRefused):
        fetcher.open(f"http://provider.test:{server.port}/file")


# TLS: the socket goes to the vetted address, SNI and the certificate check use the name.


def test_https_sends_sni_and_verifies_the_certificate_against_the_host_name(tls_server, make_fetcher):
    fetcher = make_fetcher()
    assert read_all(fetcher, f"https://provider.test:{tls_server.port}/file") == BODY
    # The certificate is valid for provider.test and not for 127.0.0.1, where we connected.
    assert tls_server.sni == ["provider.test"]


def test_https_refuses_a_certificate_for_another_name(tls_server, make_fetcher):
    fetcher = make_fetcher()
    with pytest.raises(FetchFailed) as caught:
        fetcher.open(f"https://mirror.test:{tls_server.port}/file")
    assert caught.value.transient is False
    assert "certificate" in caught.value.reason
    assert tls_server.seen == []


# 2. Untrusted hosts must resolve only to public addresses; refusal happens before connecting.

FORBIDDEN = [
    "127.0.0.1",
    "127.5.5.5",
    "::1",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "fe80::1",
    "fc00::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "0.0.0.0",  # noqa: S104 (an answer to refuse, not an address to bind)
    "::",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "ff02::1",
    "198.18.0.1",
    "192.0.2.1",
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_an_untrusted_host_resolving_to_a_forbidden_address_is_refused(
    server, make_fetcher, no_connection, address
):
    fetcher = make_fetcher(resolver=FakeDNS({"cdn.test": [address]}))
    with pytest.raises(FetchRefused) as caught:
        fetcher.open(f"http://cdn.test:{server.port}/file")
    assert "cdn.test" in caught.value.reason
    assert server.seen == []


@pytest.mark.parametrize("answers", [["93.184.216.34", "10.0.0.1"], ["10.0.0.1", "93.184.216.34"]])
def test_one_forbidden_address_among_public_ones_refuses_the_url(
    server, make_fetcher, no_connection, answers
):
    fetcher = make_fetcher(resolver=FakeDNS({"cdn.test": answers}))
    with pytest.raises(FetchRefused):
        fetcher.open("https://cdn.test/video.mp4")


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:4700:4700::1111", "::ffff:93.184.216.34", "64:ff9b::5db8:d822"]
)
def test_public_addresses_are_allowed(address):
    assert forbidden_reason(address) is None


def test_the_reason_names_the_kind_of_address():
    assert forbidden_reason("169.254.169.254") == "link-local"
    assert forbidden_reason("::ffff:127.0.0.1") == "loopback"
    assert forbidden_reason("not an address") == "invalid"


def test_a_refusal_is_logged_with_the_host_only(server, make_fetcher, no_connection, caplog):
    fetcher = make_fetcher()
    with caplog.at_level(logging.WARNING, logger="videos.safe_fetch"), pytest.raises(FetchRefused):
        fetcher.open(f"http://cdn.test:{server.port}/file?{SECRET_QUERY}")
    assert "cdn.test" in caplog.text
    assert SECRET_QUERY not in caplog.text


def test_a_resolution_failure_is_transient(make_fetcher, no_connection):
    def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    fetcher = make_fetcher(resolver=failing)
    with pytest.raises(FetchFailed) as caught:
        fetcher.open("https://cdn.test/file")
    assert caught.value.transient is True


# 3. Literal addresses in the URL are checked too, in every spelling.


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "017700000001",
        "127.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[0:0:0:0:0:0:0:1]",
        "169.254.169.254",
    ],
)
def test_literal_forbidden_addresses_are_refused_without_resolving(server, make_fetcher, no_connection, host):
    dns = FakeDNS({})
    fetcher = make_fetcher(resolver=dns)
    with pytest.raises(FetchRefused):
        fetcher.open(f"http://{host}:{server.port}/file")
    assert dns.calls == []
    assert server.seen == []


def test_a_numeric_host_that_is_no_address_is_refused(make_fetcher, no_connection):
    fetcher = make_fetcher(resolver=FakeDNS({}))
    for url in ("http://1.2.3.4.5/", "http://999.0.0.1/", "http://foo.123/"):
        with pytest.raises(FetchRefused):
            fetcher.open(url)


# 4. DNS rebinding: one resolution per hop, and the socket goes to that answer.


def test_dns_rebinding_cannot_swap_the_address_after_the_check(monkeypatch, make_fetcher):
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    targets: list[tuple[str, int]] = []

    def record_and_refuse(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        # Stands in for the network: nothing leaves the machine.
        targets.append(address)
        raise ConnectionRefusedError

    monkeypatch.setattr(socket, "create_connection", record_and_refuse)
    fetcher = make_fetcher(resolver=rebinding)
    for url in ("http://cdn.test/file", "https://cdn.test/file"):
        answers = iter([["93.184.216.34"], ["127.0.0.1"]])
        calls.clear()
        targets.clear()
        with pytest.raises(FetchFailed) as caught:
            fetcher.open(url)
        assert caught.value.transient is True
        assert calls == ["cdn.test"]
        assert [ip for ip, _ in targets] == ["93.184.216.34"]


def test_an_ipv4_mapped_answer_connects_over_ipv4(monkeypatch, make_fetcher):
    targets: list[tuple[str, int]] = []

    def record_and_refuse(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        targets.append(address)
        raise ConnectionRefusedError

    monkeypatch.setattr(socket, "create_connection", record_and_refuse)
    fetcher = make_fetcher(resolver=FakeDNS({"cdn.test": ["::ffff:93.184.216.34"]}))
    with pytest.raises(FetchFailed):
        fetcher.open("http://cdn.test:8080/file")
    assert targets == [("93.184.216.34", 8080)]


# 5. Redirects: each hop is checked like the first; caller headers stay on the first origin.


def test_a_redirect_on_the_trusted_host_is_followed(server, fetcher, dns):
    with fetcher.open(f"http://provider.test:{server.port}/redirect?to=/file&{SECRET_QUERY}") as download:
        assert download.final_url == f"http://provider.test:{server.port}/file"
        assert b"".join(download.iter_bytes()) == BODY
    assert [seen.path.split("?")[0] for seen in server.seen] == ["/redirect", "/file"]
    assert len(dns.calls) == 2  # one resolution per hop
    assert SECRET_QUERY not in repr(download)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_every_redirect_status_resolves_a_relative_location(server, fetcher, status):
    url = f"http://provider.test:{server.port}/sub/redirect?status={status}&to=../file"
    assert read_all(fetcher, url) == BODY


def test_a_redirect_to_an_untrusted_host_on_loopback_is_refused(server, fetcher, loopback_only):
    with pytest.raises(FetchRefused) as caught:
        fetcher.open(f"http://provider.test:{server.port}/redirect?to=http://cdn.test:{server.port}/file")
    assert "cdn.test" in caught.value.reason
    assert [seen.path.split("?")[0] for seen in server.seen] == ["/redirect"]
    assert len(loopback_only) == 1


@pytest.mark.parametrize(
    "location",
    ["file:///etc/passwd", "ftp://provider.test/file", "gopher://provider.test:70/", "javascript:x"],
)
def test_a_redirect_to_another_scheme_is_refused(server, fetcher, location):
    with pytest.raises(FetchRefused):
        fetcher.open(f"http://provider.test:{server.port}/redirect?to={location}")


def test_a_redirect_to_an_unparsable_url_is_refused(server, fetcher):
    with pytest.raises(FetchRefused):
        fetcher.open(f"http://provider.test:{server.port}/redirect?to=http://[bad/")


def test_too_many_redirects_fail(server, make_fetcher):
    fetcher = make_fetcher(max_redirects=3)
    with pytest.raises(FetchFailed) as caught:
        fetcher.open(f"http://provider.test:{server.port}/loop")
    assert caught.value.transient is False
    assert len(server.seen) == 4  # the first request and three redirects


def test_a_redirect_without_location_fails(server, fetcher):
    with pytest.raises(FetchFailed) as caught:
        fetcher.open(f"http://provider.test:{server.port}/redirect?to=")
    assert caught.value.status_code == 302


def test_the_callers_authorization_reaches_the_trusted_host(server, fetcher):
    body = read_all(
        fetcher,
        f"http://provider.test:{server.port}/echo-auth",
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
        headers_scope=f"http://provider.test:{server.port}/",
    )
    assert body == f"auth:Bearer {SECRET_KEY}".encode()


def test_authorization_survives_a_redirect_on_the_same_origin(server, fetcher):
    url = f"http://provider.test:{server.port}/redirect?to=/echo-auth"
    scope = f"http://provider.test:{server.port}"
    body = read_all(fetcher, url, headers={"Authorization": f"Bearer {SECRET_KEY}"}, headers_scope=scope)
    assert body == f"auth:Bearer {SECRET_KEY}".encode()


def test_without_a_scope_the_callers_headers_go_nowhere(server, fetcher):
    url = f"http://provider.test:{server.port}/echo-auth"
    assert read_all(fetcher, url, headers={"Authorization": f"Bearer {SECRET_KEY}"}) == b"auth:none"


@pytest.mark.parametrize(
    "path",
    [
        "/other/echo-auth",  # outside the base path
        "/v1x/echo-auth",  # a prefix of the name is not the prefix path
        "/v1/../echo-auth",  # dot segments a server would resolve out of the prefix
        "/v1/%2e%2e/echo-auth",
    ],
)
def test_authorization_is_sent_only_under_the_scope_path(server, fetcher, path):
    scope = f"http://provider.test:{server.port}/v1"
    url = f"http://provider.test:{server.port}{path}"
    assert read_all(fetcher, url, headers={"Authorization": f"Bearer {SECRET_KEY}"}, headers_scope=scope) == (
        b"auth:none"
    )


def test_authorization_never_reaches_another_port_of_the_providers_host(server, make_fetcher):
    # The provider is provider.test on one port; a receiver listens on another port of the
    # same host (trusted for fetching here, so only the key rule stands in the way).
    with _serve_ctx() as receiver:
        fetcher = make_fetcher(
            trusted_origins=[f"http://provider.test:{server.port}", f"http://provider.test:{receiver.port}"]
        )
        scope = f"http://provider.test:{server.port}/v1"
        headers = {"Authorization": f"Bearer {SECRET_KEY}"}
        direct = read_all(
            fetcher,
            f"http://provider.test:{receiver.port}/v1/echo-auth",
            headers=headers,
            headers_scope=scope,
        )
        redirect = f"http://provider.test:{server.port}/v1/redirect?to=http://provider.test:{receiver.port}/v1/echo-auth"
        redirected = read_all(fetcher, redirect, headers=headers, headers_scope=scope)
    assert direct == redirected == b"auth:none"
    assert all(SECRET_KEY not in str(seen.headers) for seen in receiver.seen)


def test_authorization_never_goes_over_plain_http_when_the_provider_is_https(server, make_fetcher):
    fetcher = make_fetcher(trusted_origins=[f"http://provider.test:{server.port}"])
    url = f"http://provider.test:{server.port}/v1/echo-auth"
    headers = {"Authorization": f"Bearer {SECRET_KEY}"}
    assert read_all(
        fetcher, url, headers=headers, headers_scope=f"https://provider.test:{server.port}/v1"
    ) == (b"auth:none")


def test_caller_headers_are_dropped_on_a_redirect_to_another_host_even_a_trusted_one(server, fetcher):
    url = f"http://provider.test:{server.port}/redirect?to=http://mirror.test:{server.port}/redirect%3Fto%3D/echo-auth"
    headers = {"Authorization": f"Bearer {SECRET_KEY}", "X-Caller": "yes"}
    scope = f"http://provider.test:{server.port}"
    assert read_all(fetcher, url, headers=headers, headers_scope=scope) == b"auth:none"
    first, second, third = server.seen
    assert first.headers.get("X-Caller") == "yes"
    # Not restored either when the chain comes back to a path on the same new host.
    assert "X-Caller" not in second.headers and "X-Caller" not in third.headers
    assert third.host == f"mirror.test:{server.port}"


# 6. Size cap.


def test_a_declared_length_over_the_cap_is_refused_before_reading(server, make_fetcher):
    fetcher = make_fetcher(max_bytes=1000)
    with pytest.raises(FetchFailed) as caught:
        fetcher.open(f"http://provider.test:{server.port}/huge")
    assert caught.value.transient is False
    assert caught.value.status_code == 200


def test_a_file_exactly_at_the_cap_is_fine(server, make_fetcher):
    fetcher = make_fetcher(max_bytes=len(BODY))
    assert read_all(fetcher, f"http://provider.test:{server.port}/file") == BODY


def test_a_chunked_body_over_the_cap_is_stopped_while_streaming(server, make_fetcher):
    fetcher = make_fetcher(max_bytes=50_000)
    sizes: list[int] = []
    url = f"http://provider.test:{server.port}/chunked?size=200000"
    with fetcher.open(url) as download, pytest.raises(FetchFailed) as caught:
        drain(download, sizes, chunk_size=8192)
    assert 40_000 < sum(sizes) <= 50_000
    assert caught.value.transient is False


# 7. Deadline and timeouts.


@pytest.mark.parametrize(
    ("path", "deadline", "read_timeout"),
    [
        ("trickle?size=1000&every=0.02", 0.5, 5.0),  # each byte in time, the whole never
        ("silent?for=1.5", 0.4, 30.0),  # silent far less than the read timeout, but past the deadline
    ],
)
def test_a_slow_body_is_cut_at_the_deadline(server, make_fetcher, path, deadline, read_timeout):
    fetcher = make_fetcher(deadline=deadline, read_timeout=read_timeout)
    started = time.monotonic()
    with (
        fetcher.open(f"http://provider.test:{server.port}/{path}") as download,
        pytest.raises(FetchFailed) as caught,
    ):
        drain(download)
    assert caught.value.transient is True
    assert f"{deadline:g} s" in caught.value.reason
    assert time.monotonic() - started < deadline + 1.0


def test_a_stalled_body_hits_the_read_timeout(server, make_fetcher):
    fetcher = make_fetcher(deadline=5.0, read_timeout=0.3)
    with (
        fetcher.open(f"http://provider.test:{server.port}/silent?for=1") as download,
        pytest.raises(FetchFailed) as caught,
    ):
        drain(download)
    assert caught.value.transient is True
    assert "stopped sending" in caught.value.reason


def test_slow_response_headers_are_cut_at_the_deadline(server, make_fetcher):
    fetcher = make_fetcher(deadline=0.3, read_timeout=30.0)
    started = time.monotonic()
    with pytest.raises(FetchFailed) as caught:
        fetcher.open(f"http://provider.test:{server.port}/slow-headers?for=1")
    assert caught.value.transient is True
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("fixture", "scheme", "deadline", "headers_timeout"),
    [
        ("server", "http", 60.0, 0.5),  # the headers' own deadline
        ("server", "http", 0.5, None),  # the whole deadline, when it is the shorter
        ("tls_server", "https", 60.0, 0.5),  # under TLS, whose socket changes hands
    ],
)
def test_headers_trickled_a_byte_at_a_time_are_cut_at_the_deadline(
    request, make_fetcher, fixture, scheme, deadline, headers_timeout
):
    # Each byte arrives long before the read timeout: only a wall-clock deadline ends it.
    port = request.getfixturevalue(fixture).port
    fetcher = make_fetcher(
        trusted_origins=[f"{scheme}://provider.test:{port}"],
        deadline=deadline,
        read_timeout=5.0,
        headers_timeout=headers_timeout,
    )
    started = time.monotonic()
    with pytest.raises(FetchFailed) as caught:
        fetcher.open(f"{scheme}://provider.test:{port}/trickle-headers?every=0.05")
    assert caught.value.transient is True
    assert "0.5 s" in caught.value.reason
    assert time.monotonic() - started < 2.0


def test_the_headers_deadline_does_not_cut_a_body_that_follows_in_time(server, make_fetcher):
    # Headers at once; the body takes longer than the headers budget but is inside the deadline.
    fetcher = make_fetcher(deadline=10.0, read_timeout=5.0, headers_timeout=0.3)
    with fetcher.open(f"http://provider.test:{server.port}/trickle?size=20&every=0.03") as download:
        assert b"".join(download.iter_bytes()) == b"x" * 20


def test_a_body_cut_short_is_an_error_not_a_smaller_file(server, make_fetcher):
    fetcher = make_fetcher()
    with (
        fetcher.open(f"http://provider.test:{server.port}/silent?for=0") as download,
        pytest.raises(FetchFailed) as caught,
    ):
        drain(download)
    assert caught.value.transient is True


def test_a_refused_connection_is_transient(make_fetcher):
    # A loopback port nothing listens on: bind one, note it, close it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchFailed) as caught:
        make_fetcher(trusted_origins=[f"http://provider.test:{port}"]).open(
            f"http://provider.test:{port}/file"
        )
    assert caught.value.transient is True
    assert caught.value.status_code is None


# 8. HTTP statuses.


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        (404, False),
        (410, False),
        (401, False),
        (403, False),
        (400, False),
        (429, True),
        (500, True),
        (503, True),
    ],
)
def test_error_statuses_fail_with_their_code(server, fetcher, code, transient):
    with pytest.raises(FetchFailed) as caught:
        fetcher.open(f"http://provider.test:{server.port}/status?code={code}")
    assert caught.value.status_code == code
    assert caught.value.transient is transient


# 9. Malformed URLs, and no secrets in errors.


@pytest.mark.parametrize(
    "url",
    [
        "ftp://provider.test/file",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "provider.test/file",
        "http:///file",
        "http://",
        "http://user:pass@provider.test/file",
        "http://user@provider.test/file",
        "http://provider.test\\@cdn.test/file",
        "http://provider.test:99999/file",
        "http://provider.test:0/file",
        "http://provider .test/file",
        "http://provider.test/fi\nle",
        "http://[fe80::1%25eth0]/file",
        "http://[not-v6]/file",
    ],
)
def test_urls_that_are_not_plain_http_links_are_refused(make_fetcher, no_connection, url):
    fetcher = make_fetcher(resolver=FakeDNS({}))
    with pytest.raises(FetchRefused) as caught:
        fetcher.open(url)
    assert url not in str(caught.value)


def test_invalid_caller_headers_are_rejected_without_echoing_the_value(make_fetcher, no_connection):
    with pytest.raises(ValueError, match="invalid name or value") as caught:
        make_fetcher().open(
            "http://provider.test/", headers={"Authorization": f"Bearer {SECRET_KEY}\r\nX: y"}
        )
    assert SECRET_KEY not in str(caught.value)


def test_errors_never_carry_the_query_string_or_the_key(server, make_fetcher, no_connection):
    secret_headers = {"Authorization": f"Bearer {SECRET_KEY}"}
    fetcher = make_fetcher()
    errors = []
    for url in (
        f"http://cdn.test:{server.port}/file?{SECRET_QUERY}",
        f"http://user:{SECRET_KEY}@provider.test/file?{SECRET_QUERY}",
        f"ftp://provider.test/file?{SECRET_QUERY}",
    ):
        with pytest.raises(FetchRefused) as caught:
            fetcher.open(url, headers=secret_headers, headers_scope="http://provider.test/")
        errors.append(caught.value)
    for error in errors:
        text = f"{error} {error!r} {error.reason}"
        assert SECRET_QUERY not in text and SECRET_KEY not in text


def test_network_and_status_errors_carry_no_secrets_or_chained_causes(server, make_fetcher):
    fetcher = make_fetcher(max_bytes=1000, read_timeout=0.3)
    secret_headers = {"Authorization": f"Bearer {SECRET_KEY}"}
    errors: list[FetchFailed] = []
    for path in ("status?code=404", "status?code=503", "huge?x=1", "slow-headers?for=1"):
        with pytest.raises(FetchFailed) as caught:
            fetcher.open(
                f"http://provider.test:{server.port}/{path}&{SECRET_QUERY}",
                headers=secret_headers,
                headers_scope=f"http://provider.test:{server.port}",
            )
        errors.append(caught.value)
    url = f"http://provider.test:{server.port}/chunked?size=5000&{SECRET_QUERY}"
    with fetcher.open(url) as download, pytest.raises(FetchFailed) as caught:
        drain(download)
    errors.append(caught.value)
    for error in errors:
        text = f"{error} {error!r} {error.reason}"
        assert SECRET_QUERY not in text and SECRET_KEY not in text
        # A chained urllib3 error would bring the URL into tracebacks and error reports.
        assert error.__cause__ is None
        assert error.__context__ is None or error.__suppress_context__
