"""Download a file from a URL that someone else chose, without being aimed at our own network.

Video and thumbnail links come from the provider's API answers, which are untrusted input: a
link to `http://169.254.169.254/` or to a name that resolves to `10.0.0.5` would make the
server fetch from its own network on the caller's behalf (SSRF). So, for every request and
every redirect hop:

- only http(s) URLs without user info are accepted;
- the host name is resolved once, here, and every address it resolves to must be public
  (unless the URL's origin, scheme + host + port, is one of `trusted_origins`: the
  configured provider, which may well live on loopback or a private network; another port
  of the same host is not trusted);
- the TCP connection goes to one of those vetted addresses, never to whatever the name
  resolves to a moment later, so a second, different DNS answer (DNS rebinding) is never
  used. TLS still sends SNI for, and verifies the certificate against, the host name;
- the caller's headers (the provider key) go only to URLs under `headers_scope` (its
  origin and path prefix), and never again once a redirect has left it;
- a size cap and a wall-clock deadline bound every download: connecting, the headers and
  the body together (see deadlines.py), so a server that trickles its headers cannot hold
  a thread either.

No proxy is ever used, whatever the environment says: a proxy resolves the name itself,
which would undo the address check.

Error messages are short display strings: they may name the host, never the URL (signed CDN
links carry their credentials in the query string) nor a header value.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.client import HTTPException
from types import TracebackType
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import urllib3.exceptions
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.response import HTTPResponse

from videos import deadlines
from videos.http import REDIRECT_STATUSES, USER_AGENT, Kind, ca_bundle, classify

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], list[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}

# Ranges no untrusted link may reach, with the word used in the refusal. Checked on top of
# `is_global` and friends because the stdlib's idea of "global" has changed between Python
# releases (and still calls multicast 224.0.0.0/4 global). More specific ranges come first.
_BLOCKED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(network), label)
    for network, label in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "reserved"),
        ("192.88.99.0/24", "reserved"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved"),
        ("198.51.100.0/24", "reserved"),
        ("203.0.113.0/24", "reserved"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "reserved"),  # IPv4-compatible addresses, deprecated
        ("64:ff9b:1::/48", "private"),  # local-use NAT64
        ("100::/64", "reserved"),  # discard-only
        ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo (2001::/32) among them
        ("2001:db8::/32", "reserved"),
        ("fc00::/7", "private"),  # unique local
        ("fe80::/10", "link-local"),
        ("fec0::/10", "private"),  # site-local, deprecated
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")

# WHATWG URL rule: a host whose last label is a number is an IPv4 address, in any of the
# forms inet_aton accepts (2130706433, 0x7f.1, 017700000001, 127.1); never a DNS name.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_IPV4_ANY_FORM = re.compile(r"[0-9a-fx.]+")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers the connection itself must control: Host names the vetted origin, and framing is ours.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")


class FetchError(Exception):
    """Base of both fetch errors. `reason` is a short display string without secrets."""

    status_code: int | None = None
    transient: bool = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FetchRefused(FetchError):
    """The URL, or an address it leads to, is not one the server may fetch from."""


class FetchFailed(FetchError):
    """Network error, HTTP error status, too large or too slow. `transient`: try again later."""

    def __init__(self, reason: str, *, status_code: int | None = None, transient: bool = False) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.transient = transient


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver, as IP strings, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def forbidden_reason(ip: str) -> str | None:
    """Why an untrusted link may not lead to `ip` ("loopback", "private"...), or None if it may."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "invalid"
    if isinstance(address, ipaddress.IPv6Address):
        # These IPv6 forms are carried to an IPv4 address: that address is where packets go.
        if address.ipv4_mapped is not None:
            return forbidden_reason(str(address.ipv4_mapped))
        if address in _NAT64:
            return forbidden_reason(str(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
        if address in _SIXTOFOUR and address.sixtofour is not None:
            embedded = forbidden_reason(str(address.sixtofour))
            if embedded is not None:
                return embedded
    for network, label in _BLOCKED_NETWORKS:
        if address in network:
            return label
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_unspecified or address.is_reserved or not address.is_global:
        return "reserved"
    return None


def _canonical_host(host: str) -> tuple[str, bool]:
    """(host in the form we compare, resolve and send, whether it is an IP literal).

    `host` is urlsplit's hostname: lower case, IPv6 brackets removed.
    """
    host = host.rstrip(".")
    if not host or "%" in host:
        # "%" would be an IPv6 zone: meaningless off this machine.
        raise FetchRefused("The link's host is not valid.")
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host)), True
        except ValueError:
            raise FetchRefused("The link's host is not valid.") from None
    if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        try:
            if not _IPV4_ANY_FORM.fullmatch(host):
                raise OSError
            return socket.inet_ntoa(socket.inet_aton(host)), True
        except OSError:
            raise FetchRefused("The link's host is not a valid IP address.") from None
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise FetchRefused("The link's host is not a valid host name.") from None
    if not _HOST_NAME.fullmatch(ascii_host):
        raise FetchRefused("The link's host is not a valid host name.")
    return ascii_host, False


@dataclass(frozen=True)
class _Target:
    url: str = field(repr=False)
    scheme: str
    host: str
    port: int
    is_literal: bool
    request_target: str = field(repr=False)

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def path(self) -> str:
        return self.request_target.split("?", 1)[0]


def _parse(url: str) -> _Target:
    if not isinstance(url, str) or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise FetchRefused("The link contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRefused("The link is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise FetchRefused("Only http and https links can be fetched.")
    if "@" in parts.netloc:
        # Credentials in a link end up in logs, and "a@b" is a classic way to disguise a host.
        raise FetchRefused("Links with a user name or password are not allowed.")
    if not parts.hostname:
        raise FetchRefused("The link has no host.")
    host, is_literal = _canonical_host(parts.hostname)
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise FetchRefused("The link's port is not valid.")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    # Keep existing escapes and reserved characters; escape what may not go on the wire raw.
    target = quote(target, safe="/?%:@!$&'()*+,;=~")
    return _Target(url, scheme, host, port, is_literal, target)


class _CouldNotConnect(Exception):
    def __init__(self, *, timed_out: bool) -> None:
        super().__init__("timed out" if timed_out else "could not connect")
        self.timed_out = timed_out


class _PinnedMixin:
    """Connects to addresses vetted before the request, never to a fresh DNS answer.

    The connection's `host` stays the name from the URL, so the Host header, TLS SNI and the
    certificate check all use the name, while the socket goes to a vetted address.
    """

    port: int

    def __init__(
        self,
        host: str,
        port: int,
        *,
        addresses: tuple[str, ...],
        connect_timeout: float,
        deadline: deadlines.Deadline,
        **kwargs: Any,
    ) -> None:
        super().__init__(host, port, **kwargs)  # type: ignore[call-arg]
        self.addresses = addresses
        self.connect_timeout = connect_timeout
        self.deadline = deadline

    def _new_conn(self) -> socket.socket:
        timed_out = False
        for address in self.addresses:
            remaining = self.deadline.remaining()
            if remaining <= 0:
                timed_out = True
                break
            try:
                # A literal IP: getaddrinfo parses it, no DNS query is made.
                sock = socket.create_connection((address, self.port), min(self.connect_timeout, remaining))
            except TimeoutError:
                timed_out = True
                continue
            except OSError:
                continue
            # As urllib3 does: a request goes out in one write, so do not wait to batch it.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # From here the TLS handshake and the headers are under the wall-clock deadline.
            self.deadline.attach(sock)
            return sock
        raise _CouldNotConnect(timed_out=timed_out)


class _PinnedHTTPConnection(_PinnedMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedMixin, HTTPSConnection):
    pass


@dataclass
class _Stream:
    connection: HTTPConnection
    response: HTTPResponse
    sock: socket.socket | None
    watchdog: deadlines.Deadline
    deadline: float
    read_timeout: float
    max_bytes: int
    host: str
    expected: int | None = None
    received: int = 0
    closed: bool = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.watchdog.close()
        _close_quietly(self.connection, self.response, self.sock)


def _close_quietly(
    connection: HTTPConnection, response: HTTPResponse | None, sock: socket.socket | None
) -> None:
    # The response holds a file over the socket, and http.client may already have dropped
    # the connection's reference to it: close all three so the socket is really released.
    for thing in (response, connection, sock):
        if thing is None:
            continue
        with contextlib.suppress(OSError):
            thing.close()


@dataclass
class Download:
    """A response being downloaded. Read it with `iter_bytes`; `close` it when done."""

    status_code: int
    content_type: str
    content_length: int | None
    # Not in the repr: a signed link's query string is a credential.
    final_url: str = field(repr=False)
    _stream: _Stream | None = field(default=None, repr=False, compare=False)

    def iter_bytes(self, chunk_size: int = 65536) -> Iterator[bytes]:
        """The body in chunks. Raises FetchFailed mid-stream when over the size cap, past
        the deadline, stalled longer than the read timeout, or cut off. Closes when done."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive.")
        stream = self._stream
        if stream is None:
            return
        try:
            while True:
                remaining = stream.watchdog.remaining()
                if remaining <= 0:
                    raise _too_slow(stream.deadline, stream.response.status)
                if stream.sock is not None and stream.sock.fileno() != -1:
                    # A stalled server must not hold us past the deadline either. (The socket
                    # is already closed once the whole body has arrived.)
                    stream.sock.settimeout(min(stream.read_timeout, remaining))
                try:
                    chunk = stream.response.read1(chunk_size)
                except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
                    raise _read_failure(
                        stream, f"{stream.host} stopped sending for over {stream.read_timeout:g} s."
                    ) from None
                except (urllib3.exceptions.HTTPError, HTTPException, OSError):
                    raise _read_failure(
                        stream, f"The connection to {stream.host} broke during the download."
                    ) from None
                if not chunk:
                    if stream.watchdog.expired:
                        # The watchdog's shutdown reads as an end of file: a fragment.
                        raise _too_slow(stream.deadline, stream.response.status)
                    if stream.expected is not None and stream.received < stream.expected:
                        raise FetchFailed(
                            f"The connection to {stream.host} closed before the whole file arrived.",
                            status_code=stream.response.status,
                            transient=True,
                        )
                    return
                stream.received += len(chunk)
                if stream.received > stream.max_bytes:
                    raise FetchFailed(
                        f"The file is over the {stream.max_bytes}-byte limit.",
                        status_code=stream.response.status,
                    )
                yield chunk
        finally:
            # Also on an abandoned generator: the socket must not outlive the download.
            stream.close()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _read_failure(stream: _Stream, reason: str) -> FetchFailed:
    """A body read failed: past the deadline whatever the symptom, else `reason`."""
    if stream.watchdog.passed:
        return _too_slow(stream.deadline, stream.response.status)
    return FetchFailed(reason, status_code=stream.response.status, transient=True)


def _too_slow(deadline: float, status_code: int | None) -> FetchFailed:
    return FetchFailed(f"The download took over {deadline:g} s.", status_code=status_code, transient=True)


def _status_error(status: int, host: str) -> FetchFailed:
    kind = classify(status)
    if kind is Kind.NOT_FOUND:
        message = f"{host} does not have this file (HTTP {status})."
    elif kind is Kind.DENIED:
        message = f"{host} refused access to this file (HTTP {status})."
    else:
        message = f"{host} answered HTTP {status}."
    return FetchFailed(message, status_code=status, transient=kind.transient)


def _content_length(response: HTTPResponse) -> int | None:
    if response.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        # We hand out decoded bytes, so the encoded length would be wrong.
        return None
    raw = response.headers.get("Content-Length", "").strip()
    return int(raw) if _CONTENT_LENGTH.fullmatch(raw) else None


def _checked_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in (headers or {}).items():
        # Checked here because http.client's own error would quote the value: a key.
        if not _HEADER_NAME.fullmatch(name) or any(ch in value for ch in "\r\n\0"):
            raise ValueError(f"Header {name[:40]!r} has an invalid name or value.")
        if name.lower() not in _RESERVED_HEADERS:
            checked[name] = value
    return checked


def _trusted_origin(url: str) -> tuple[str, str, int]:
    try:
        return _parse(url.strip()).origin
    except FetchRefused:
        raise ValueError(f"Not an http(s) URL: {url!r}") from None


def _has_dot_segment(path: str) -> bool:
    # "/v1/../admin" and "/v1/%2e%2e/admin" leave the prefix once a server resolves them.
    return any(segment.replace("%2e", ".").replace("%2E", ".") in (".", "..") for segment in path.split("/"))


def within_prefix(url: str, prefix_url: str) -> bool:
    """Whether `url` has the origin of `prefix_url` (scheme, host and port) and a path at or
    under its path. The one rule for where a provider's key may be sent."""
    if not prefix_url:
        return False
    try:
        target, prefix = _parse(url), _parse(prefix_url)
    except FetchRefused:
        return False
    if target.origin != prefix.origin or _has_dot_segment(target.path):
        return False
    base = prefix.path.rstrip("/")
    return target.path == base or target.path.startswith(base + "/")


def vet_destination(url: str, *, allow_hosts: Iterable[str] = (), resolver: Resolver | None = None) -> None:
    """Check a URL a person typed for the server to request later (a workspace connection's
    base URL) by the rule for untrusted links: http(s), no user info, and a host that
    resolves only to public addresses, unless the operator listed it in `allow_hosts`
    ("host" for any port, "host:port" for one; VIDEO_FETCH_ALLOW_HOSTS). Raises
    FetchRefused, or FetchFailed (transient) when the host does not resolve."""
    target = _parse(url)
    if _allowed(target, allow_hosts):
        return
    SafeFetcher(resolver=resolver)._vetted_addresses(target)


def host_allowed(url: str, allow_hosts: Iterable[str]) -> bool:
    """Whether the operator listed `url`'s host (or host:port) in `allow_hosts`
    (VIDEO_FETCH_ALLOW_HOSTS), so it may be on loopback or a private network."""
    try:
        return _allowed(_parse(url), allow_hosts)
    except FetchRefused:
        return False


def _allowed(target: _Target, allow_hosts: Iterable[str]) -> bool:
    for entry in allow_hosts:
        try:
            parts = urlsplit("//" + entry.strip())
            host, port = _canonical_host(parts.hostname or ""), parts.port
        except (ValueError, FetchRefused):
            logger.warning("Ignored an allowed host that is not host or host:port: %r", entry[:100])
            continue
        if host[0] == target.host and port in (None, target.port):
            return True
    return False


class SafeFetcher:
    """Fetches http(s) files for the dashboard, refusing anything that leads off the internet.

    `trusted_origins` (URLs; matched on scheme, host and port, the path is ignored) are
    exempt from the address check: the configured provider, which may run on loopback or a
    private network. Every other origin, including another port or scheme of the same host,
    must resolve only to public unicast addresses.

    Thread-safe: it keeps no state between calls. Each `open` makes its own connection and
    `Download.close` (or the end of `iter_bytes`) releases it; no connection is reused, so
    no pooled socket can carry a request to an address vetted for another host.
    """

    def __init__(
        self,
        *,
        trusted_origins: Iterable[str] = (),
        max_bytes: int = 2 * 1024**3,
        deadline: float = 600.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        headers_timeout: float | None = None,
        max_redirects: int = 5,
        resolver: Resolver | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.trusted_origins = frozenset(_trusted_origin(url) for url in trusted_origins if url)
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        # Wall-clock time from `open` to the response headers (redirects included): a server
        # that answers nothing, or a byte at a time, frees the thread this soon.
        self.headers_timeout = min(deadline, headers_timeout or connect_timeout + read_timeout)
        self.max_redirects = max_redirects
        self.resolver: Resolver = resolver or system_resolver
        self.user_agent = user_agent
        # The same CA bundle as client.py's requests session.
        self.ca_certs = ca_bundle()

    def __repr__(self) -> str:
        return f"<SafeFetcher trusted={sorted(self.trusted_origins)}>"

    def open(
        self, url: str, *, headers: Mapping[str, str] | None = None, headers_scope: str = ""
    ) -> Download:
        """GET `url`, following redirects, and return the 2xx response to stream.

        `headers` (such as the provider's `Authorization`) are sent only to URLs under
        `headers_scope` (see `within_prefix`); once a redirect leaves it they are dropped
        for good. Raises FetchRefused or FetchFailed.
        """
        started = time.monotonic()
        deadline_at = started + self.deadline
        watchdog = deadlines.arm(self.headers_timeout)
        try:
            return self._open(url, _checked_headers(headers), headers_scope, deadline_at, watchdog)
        except BaseException:
            watchdog.close()
            raise

    def _open(
        self,
        url: str,
        caller_headers: dict[str, str],
        headers_scope: str,
        deadline_at: float,
        watchdog: deadlines.Deadline,
    ) -> Download:
        target = _parse(url)
        send_caller_headers = bool(caller_headers)
        redirects = 0
        while True:
            send_caller_headers = send_caller_headers and within_prefix(target.url, headers_scope)
            request_headers = {"User-Agent": self.user_agent, "Accept": "*/*"}
            if send_caller_headers:
                request_headers.update(caller_headers)
            addresses = self._vetted_addresses(target)
            connection, response, sock = self._request(target, addresses, request_headers, watchdog)
            status = response.status
            if status in REDIRECT_STATUSES:
                _close_quietly(connection, response, sock)
                target = self._redirect_target(target, status, response.headers.get("Location"), redirects)
                redirects += 1
                continue
            if not 200 <= status < 300:
                _close_quietly(connection, response, sock)
                raise _status_error(status, target.host)
            length = _content_length(response)
            if length is not None and length > self.max_bytes:
                _close_quietly(connection, response, sock)
                raise FetchFailed(
                    f"The file is {length} bytes, over the {self.max_bytes}-byte limit.", status_code=status
                )
            # The headers are in: from here the body has the rest of the whole deadline.
            watchdog.extend_to(deadline_at)
            stream = _Stream(
                connection=connection,
                response=response,
                sock=sock,
                watchdog=watchdog,
                deadline=self.deadline,
                read_timeout=self.read_timeout,
                max_bytes=self.max_bytes,
                host=target.host,
                expected=length,
            )
            content_type = (response.headers.get("Content-Type") or "").strip()
            return Download(
                status_code=status,
                content_type=content_type or "application/octet-stream",
                content_length=length,
                final_url=target.url,
                _stream=stream,
            )

    def post(self, url: str, body: bytes, *, headers: Mapping[str, str] | None = None) -> int:
        """POST `body` to `url` once and return the answer's status code (the body is not
        read). The same address vetting, pinned connection and deadlines as `open`; a
        redirect is not followed (its status is returned: a notification receiver that
        redirects is misconfigured, and following it would resend the body). Raises
        FetchRefused or FetchFailed."""
        watchdog = deadlines.arm(self.headers_timeout)
        try:
            target = _parse(url)
            request_headers = {"User-Agent": self.user_agent, "Accept": "*/*", **_checked_headers(headers)}
            addresses = self._vetted_addresses(target)
            connection, response, sock = self._request(
                target, addresses, request_headers, watchdog, method="POST", body=body
            )
            _close_quietly(connection, response, sock)
            return response.status
        finally:
            watchdog.close()

    def _redirect_target(self, target: _Target, status: int, location: str | None, redirects: int) -> _Target:
        """The next hop of a redirect, parsed (and so checked) like the first URL."""
        location = (location or "").strip()
        if not location:
            raise FetchFailed(f"{target.host} answered HTTP {status} without a Location.", status_code=status)
        if redirects >= self.max_redirects:
            raise FetchFailed(f"Too many redirects (over {self.max_redirects}).", status_code=status)
        try:
            next_url = urljoin(target.url, location)
        except ValueError:
            raise FetchRefused(f"{target.host} redirected to an invalid URL.") from None
        return _parse(next_url)

    def _vetted_addresses(self, target: _Target) -> tuple[str, ...]:
        """Resolve the host once; every address must pass, or the whole URL is refused."""
        trusted = target.origin in self.trusted_origins
        if target.is_literal:
            answers = [target.host]
        else:
            try:
                answers = list(self.resolver(target.host, target.port))
            except (OSError, UnicodeError):
                raise FetchFailed(f"Could not resolve {target.host}.", transient=True) from None
            if not answers:
                raise FetchFailed(f"Could not resolve {target.host}.", transient=True)
        vetted: list[str] = []
        for answer in answers:
            ip, _, zone = str(answer).partition("%")
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                raise FetchRefused(f"{target.host} resolved to something that is not an address.") from None
            if not trusted:
                reason = forbidden_reason(ip)
                if reason is not None:
                    logger.warning("Refused to fetch from %s: a %s address.", target.host, reason)
                    raise FetchRefused(
                        f"{target.host} leads to a {reason} address, which the server may not fetch from."
                    )
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                # Connect over IPv4 to what the mapped form means.
                vetted.append(str(address.ipv4_mapped))
            else:
                vetted.append(f"{address}%{zone}" if zone else str(address))
        return tuple(dict.fromkeys(vetted))

    def _request(
        self,
        target: _Target,
        addresses: tuple[str, ...],
        headers: dict[str, str],
        watchdog: deadlines.Deadline,
        *,
        method: str = "GET",
        body: bytes | None = None,
    ) -> tuple[HTTPConnection, HTTPResponse, socket.socket | None]:
        remaining = watchdog.remaining()
        if remaining <= 0:
            raise self._no_headers()
        pinned: dict[str, Any] = {
            "addresses": addresses,
            "connect_timeout": self.connect_timeout,
            "deadline": watchdog,
            # Used for sending the request and waiting for the answer; connect has its own.
            "timeout": min(self.read_timeout, remaining),
        }
        connection: HTTPConnection
        if target.scheme == "https":
            connection = _PinnedHTTPSConnection(
                target.host, target.port, cert_reqs="CERT_REQUIRED", ca_certs=self.ca_certs, **pinned
            )
        else:
            connection = _PinnedHTTPConnection(target.host, target.port, **pinned)
        sock: socket.socket | None = None
        try:
            connection.request(
                method,
                target.request_target,
                body=body,
                headers=headers,
                preload_content=False,
                decode_content=True,
            )
            # Kept for the body's timeouts: http.client drops its own reference on
            # "Connection: close" answers while the response still reads from the socket.
            sock = connection.sock
            remaining = watchdog.remaining()
            if remaining <= 0:
                raise self._no_headers()
            connection.timeout = min(self.read_timeout, remaining)
            response = connection.getresponse()
            if watchdog.expired:
                # The watchdog's shutdown reads as the end of the headers to http.client:
                # what it parsed is a fragment, never an answer.
                _close_quietly(connection, response, sock)
                raise self._no_headers()
        except BaseException as exc:
            _close_quietly(connection, None, sock)
            error = self._request_error(exc, target.host, watchdog)
            if error is None:
                raise
            # Not chained: the network errors' messages name the URL.
            raise error from None
        return connection, response, sock

    def _no_headers(self) -> FetchFailed:
        return FetchFailed(
            f"The server did not send its answer's headers within {self.headers_timeout:g} s.", transient=True
        )

    def _request_error(
        self, exc: BaseException, host: str, watchdog: deadlines.Deadline
    ) -> FetchError | None:
        """The FetchFailed for a failed request, or None to let `exc` through unchanged."""
        if isinstance(exc, FetchError):
            return None
        if watchdog.passed:
            # Whatever the symptom (a reset, a closed socket, a timeout), the cause is the clock.
            if isinstance(exc, Exception):
                return self._no_headers()
            return None
        if isinstance(exc, _CouldNotConnect):
            verb = "Timed out connecting to" if exc.timed_out else "Could not connect to"
            return FetchFailed(f"{verb} {host}.", transient=True)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return FetchFailed(f"The TLS certificate of {host} is not valid for it.")
        if isinstance(exc, ssl.SSLError):
            return FetchFailed(f"The TLS handshake with {host} failed.", transient=True)
        if isinstance(exc, TimeoutError | urllib3.exceptions.TimeoutError):
            return FetchFailed(f"{host} did not answer within {self.read_timeout:g} s.", transient=True)
        if isinstance(exc, HTTPException | OSError | urllib3.exceptions.HTTPError):
            return FetchFailed(f"The connection to {host} failed.", transient=True)
        # Anything else is a bug here (or an interrupt), not the network: let it surface.
        return None


__all__ = [
    "Download",
    "FetchError",
    "FetchFailed",
    "FetchRefused",
    "SafeFetcher",
    "forbidden_reason",
    "system_resolver",
    "vet_destination",
    "within_prefix",
]
