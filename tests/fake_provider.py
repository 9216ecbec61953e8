"""A real HTTP server on loopback that plays an OpenAI-compatible video provider.

Each task ID gets a script: a list of replies served in order (the last one repeats), so a
test can say "404, then 404, then 200 processing". Every request is recorded, so a test can
count what the server actually received.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import unquote, urlsplit


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    trickle: float = 0.0  # seconds between body bytes, for slow bodies
    # Seconds between header bytes: the status line at once, then one byte of an endless
    # header at a time (each well inside any read timeout) until the client hangs up or
    # `trickle_for` seconds pass. Only a wall-clock deadline ends such an answer.
    trickle_headers: float = 0.0
    trickle_for: float = 30.0
    reset: bool = False  # drop the connection with a TCP RST instead of answering
    truncate: bool = False  # promise a longer body than is sent, then close


@dataclass
class Seen:
    method: str
    raw_path: str
    task_id: str | None
    authorization: str | None
    at: float
    peer_port: int
    status: int = 0  # the status of the reply it got (0 for a reset)
    body: bytes = b""
    content_type: str = ""


# The key a test configures for the fake provider (see the `configured` fixture).
PROVIDER_KEY = "sk-fake-provider-key-0123456789"


class LoopbackServer:
    """A threaded HTTP/1.1 server on a free loopback port; every GET, POST and DELETE goes
    to `_handle(handler)`, which subclasses write."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner._handle(self)

            def do_POST(self) -> None:
                owner._handle(self)

            def do_DELETE(self) -> None:
                owner._handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            # socketserver's default backlog of 5 drops connections when a poller's threads
            # all connect at once on a busy machine (a SYN retried a second later, past a
            # test's connect timeout): a test of ours, not of the provider, would fail.
            request_queue_size = 128

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # resets, aborted reads and clients going away are the point of some tests

        self.server = Server(("127.0.0.1", 0), Handler)
        # Shutting down waits for the serving loop's next look at its flag: every 20 ms,
        # not the default half second every test using a provider would pay at teardown.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError


class FakeProvider(LoopbackServer):
    PREFIX = "/v1/videos/"

    def __init__(self) -> None:
        super().__init__()
        self.scripts: dict[str, list[Reply]] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()

    def script(self, task_id: str, *replies: Reply) -> None:
        with self._lock:
            self.scripts[task_id] = list(replies)

    def requests_for(self, task_id: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.requests if seen.task_id == task_id]

    def _next_reply(self, task_id: str | None) -> Reply:
        with self._lock:
            script = self.scripts.get(task_id or "")
            if not script:
                return Reply(404, {"error": {"message": "not found", "code": "not_found"}})
            return script.pop(0) if len(script) > 1 else script[0]

    def route(self, method: str, path: str) -> str:
        """The script key of a request other than a status GET: "POST /videos",
        "GET /videos" (the list), "POST /videos/{id}/remix", "DELETE /videos/{id}"."""
        return f"{method} {path}"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw_path = urlsplit(handler.path).path
        method = handler.command
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        # Decided on the raw path: an ID's own slashes arrive percent-encoded, so a literal
        # "/content" or "/remix" suffix is the endpoint's, never part of an ID.
        is_status = (
            method == "GET" and raw_path.startswith(self.PREFIX) and "/" not in raw_path[len(self.PREFIX) :]
        )
        if is_status:
            task_id = unquote(raw_path[len(self.PREFIX) :])
        else:
            # Not a status request: scripted by route, e.g. "POST /videos".
            task_id = self.route(method, unquote(raw_path.removeprefix("/v1")))
        with self._lock:
            seen = Seen(
                method,
                handler.path,
                task_id,
                handler.headers.get("Authorization"),
                time.monotonic(),
                handler.client_address[1],
                body=body,
                content_type=handler.headers.get("Content-Type", ""),
            )
            self.requests.append(seen)
        reply = self._next_reply(task_id)
        seen.status = 0 if reply.reset else reply.status
        if reply.delay:
            time.sleep(reply.delay)
        if reply.trickle_headers:
            self._trickle_headers(handler, reply)
            return
        if reply.reset:
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.close_connection = True
            handler.connection.close()
            return
        body = reply.body if reply.body is not None else json.dumps(reply.json).encode()
        handler.send_response(reply.status)
        headers = {"Content-Type": "application/json", **reply.headers}
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body) * (2 if reply.truncate else 1)))
        handler.end_headers()
        try:
            if reply.trickle:
                for byte in body:
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                    time.sleep(reply.trickle)
            else:
                handler.wfile.write(body)
            if reply.truncate:
                handler.wfile.flush()
                handler.close_connection = True
        except OSError:
            handler.close_connection = True

    @staticmethod
    def _trickle_headers(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        handler.close_connection = True
        ends = time.monotonic() + reply.trickle_for
        try:
            handler.wfile.write(b"HTTP/1.1 %d OK\r\nX-Slow: " % reply.status)
            while time.monotonic() < ends:
                handler.wfile.write(b"a")
                handler.wfile.flush()
                time.sleep(reply.trickle_headers)
        except OSError:
            pass  # the client gave up, as it should


def video(task_id: str = "video_1", status: str = "in_progress", progress: Any = 10, **extra: Any) -> Reply:
    """A 200 answer with a task object in OpenAI's shape."""
    payload = {"id": task_id, "object": "video", "status": status, "progress": progress, **extra}
    return Reply(200, payload)
