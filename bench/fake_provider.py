"""A fast fake video provider for benchmarks: answers `GET /v1/videos/{id}` after a set latency.

    .venv/bin/python bench/fake_provider.py [--port 0] [--latency 100]

Runs as its own process so its CPU never competes for the GIL with the client being
measured. One asyncio event loop, HTTP/1.1 with keep-alive, no thread per connection: each
answer is a timer (`call_later`), so thousands of requests can wait out their latency at
once for the cost of a heap entry. Binds 127.0.0.1 only. The first line on stdout is the
port it listens on (useful with `--port 0`, which picks a free one). Stops on SIGTERM or
SIGINT.

Every status request is counted. `GET /_bench/stats` (answered at once, not counted) returns
`{"requests": n, "cpu_seconds": s, "open_connections": c, "peak_connections": p}`, so a
benchmark can check how many requests really arrived and show that this server was not the
bottleneck.

Not the test suite's fake provider (`tests/fake_provider.py`): that one scripts odd answers
per task with a thread per connection; this one only has to be cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections import deque
from typing import Any
from urllib.parse import unquote

HOST = "127.0.0.1"
STATUS_PREFIX = b"/v1/videos/"
STATS_PATH = b"/_bench/stats"
# A request head larger than this is not a client we want to serve; drop the connection
# rather than buffer without bound.
MAX_HEAD_BYTES = 16 * 1024


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.open_connections = 0
        self.peak_connections = 0

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "requests": self.requests,
                # The server's own CPU (all its threads: there is only one), so the reader
                # can compare it with the wall time of a run.
                "cpu_seconds": time.process_time(),
                "open_connections": self.open_connections,
                "peak_connections": self.peak_connections,
            }
        ).encode()


def response(status: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("ascii") + body


class ProviderProtocol(asyncio.Protocol):
    """One keep-alive connection. Requests are answered in order, one at a time.

    HTTP/1.1 answers must leave in the order the requests came. Clients such as requests
    never pipeline, but a queue keeps a pipelining client correct too: the next request's
    latency starts only when the previous answer has been sent.
    """

    def __init__(self, stats: Stats, latency: float, created_at: int) -> None:
        self.stats = stats
        self.latency = latency
        self.created_at = created_at
        self.buffer = b""
        self.queue: deque[tuple[bytes, bytes, bool]] = deque()
        self.busy = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.stats.open_connections += 1
        self.stats.peak_connections = max(self.stats.peak_connections, self.stats.open_connections)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.open_connections -= 1
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) != -1:
            head, rest = self.buffer[:end], self.buffer[end + 4 :]
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3:
                self._send(response("400 Bad Request", b'{"error": "bad request line"}'), close=True)
                return
            method, target, _version = parts
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name, value = name.strip().lower(), value.strip()
                if name == b"content-length":
                    if not value.isdigit():
                        self._send(response("400 Bad Request", b'{"error": "bad length"}'), close=True)
                        return
                    length = int(value)
                elif name == b"connection" and value.lower() == b"close":
                    close = True
            if len(rest) < length:
                break  # wait for the rest of the body, which is then ignored
            self.buffer = rest[length:]
            self.queue.append((method, target, close))
        if len(self.buffer) > MAX_HEAD_BYTES:
            self._send(response("431 Request Header Fields Too Large", b"{}"), close=True)
            return
        self._next()

    def _next(self) -> None:
        if self.busy or not self.queue or self.transport is None:
            return
        method, target, close = self.queue.popleft()
        path = target.split(b"?", 1)[0]
        if method == b"GET" and path == STATS_PATH:
            self._send(response("200 OK", self.stats.as_json()), close=close)
            return
        if method == b"GET" and path.startswith(STATUS_PREFIX) and len(path) > len(STATUS_PREFIX):
            self.stats.requests += 1
            self.busy = True
            task_id = unquote(path[len(STATUS_PREFIX) :].decode("latin-1"))
            asyncio.get_running_loop().call_later(self.latency, self._answer, task_id, close)
            return
        self._send(response("404 Not Found", b'{"error": {"message": "no such route"}}'), close=close)

    def _answer(self, task_id: str, close: bool) -> None:
        self.busy = False
        # What a Sora-style gateway answers for a running job; small, as the real ones are.
        body = json.dumps(
            {
                "id": task_id,
                "object": "video",
                "status": "in_progress",
                "progress": 42,
                "model": "sora-2",
                "seconds": "8",
                "size": "1280x720",
                "created_at": self.created_at,
            }
        ).encode()
        self._send(response("200 OK", body), close=close)

    def _send(self, data: bytes, *, close: bool = False) -> None:
        if self.transport is None:
            return
        self.transport.write(data)
        if close:
            # The client asked to close (or sent something unusable): answer, then hang up.
            self.transport.close()
            self.transport = None
            return
        self._next()


async def serve(port: int, latency: float) -> None:
    loop = asyncio.get_running_loop()
    stats = Stats()
    created_at = int(time.time()) - 30
    server = await loop.create_server(
        lambda: ProviderProtocol(stats, latency, created_at), HOST, port, backlog=1024, reuse_address=True
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed first)")
    parser.add_argument("--latency", type=float, default=100.0, help="milliseconds before each answer")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.latency / 1000))


if __name__ == "__main__":
    main()
