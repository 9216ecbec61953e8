"""Wall-clock deadlines for outgoing HTTP: connecting, the headers and the body, together.

Socket timeouts bound each read, not the request: a server that sends its status line or
headers one byte every few seconds never trips them, and neither requests nor http.client
checks the clock while they read headers. So a hostile provider could hold a worker thread,
a whole poll pass or a web thread for as long as it liked.

Here one daemon thread (the watchdog) keeps every armed `Deadline` in a heap. When one
passes, it shuts down the sockets attached to it, which makes any blocked connect, TLS
handshake, header read or body read in another thread fail at once; the caller sees a
network error, asks `deadline.expired`, and reports "took too long". Shutting down (not
closing) leaves the file descriptor to its owner, so nothing else can reuse it meanwhile.

Two ways to attach sockets:
- explicitly, `deadline.attach(sock)` (safe_fetch.py owns its connections);
- through a pool: while `with deadline.applied():` is active on a thread, every connection
  that `DeadlineHTTPAdapter` opens or reuses on that thread is attached (client.py, whose
  requests session pools keep-alive connections).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.poolmanager import PoolManager


class Deadline:
    """A moment (time.monotonic) after which the attached sockets are shut down."""

    def __init__(self, at: float, watchdog: Watchdog) -> None:
        self.at = at
        self.expired = False
        self._watchdog = watchdog
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def passed(self) -> bool:
        """Whether the deadline has come, whether or not the watchdog has fired yet."""
        return self.expired or self.remaining() <= 0

    def attach(self, sock: socket.socket | None) -> None:
        """Shut `sock`'s connection down when the deadline passes (at once if it already has)."""
        if sock is None or sock.fileno() == -1:
            return
        # A duplicate descriptor of the same connection: wrapping a socket in TLS moves its
        # descriptor to a new object (and leaves the old one empty), but a shutdown through
        # any descriptor of a connection ends it for all of them.
        handle = socket.fromfd(sock.fileno(), sock.family, sock.type)
        with self._lock:
            if not self._closed and not self.expired:
                self._sockets.append(handle)
                return
            fire = self.expired and not self._closed
        if fire:
            _shutdown(handle)
        handle.close()

    def extend_to(self, at: float) -> None:
        """Move the deadline (later or earlier) while nothing has expired yet."""
        with self._lock:
            if self.expired or self._closed:
                return
            self.at = at
        self._watchdog.schedule(self)

    def close(self) -> None:
        """Disarm: the connections are the caller's again (a pooled one may be reused)."""
        with self._lock:
            self._closed = True
            handles, self._sockets = self._sockets, []
        for handle in handles:
            handle.close()

    def _fire(self, now: float) -> bool:
        """Called by the watchdog. Returns False when the deadline has moved later."""
        with self._lock:
            if self._closed:
                return True
            if now < self.at:
                return False
            self.expired = True
            handles = list(self._sockets)
        # Shut down, not closed: the descriptors are closed by `close`, once the caller has
        # seen the failure, so no descriptor number is reused while it still reads.
        for handle in handles:
            _shutdown(handle)
        return True

    @contextlib.contextmanager
    def applied(self) -> Iterator[Deadline]:
        """Attach every connection a DeadlineHTTPAdapter uses on this thread meanwhile."""
        previous = getattr(_current, "deadline", None)
        _current.deadline = self
        try:
            yield self
        finally:
            _current.deadline = previous

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _shutdown(handle: socket.socket) -> None:
    with contextlib.suppress(OSError):
        handle.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """One thread that fires deadlines in time order. Started on first use."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._counter = itertools.count()
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> Deadline:
        """A deadline `seconds` from now. Close it (or use it as a context manager) when done."""
        deadline = Deadline(time.monotonic() + seconds, self)
        self.schedule(deadline)
        return deadline

    def schedule(self, deadline: Deadline) -> None:
        with self._wakeup:
            earliest = self._heap[0][0] if self._heap else float("inf")
            heapq.heappush(self._heap, (deadline.at, next(self._counter), deadline))
            if self._thread is None or not self._thread.is_alive():
                # Also after a fork (gunicorn's preload): threads do not survive it.
                self._thread = threading.Thread(target=self._run, name="deadline-watchdog", daemon=True)
                self._thread.start()
            if deadline.at < earliest:
                # Only a new earliest deadline changes how long the watchdog sleeps; not
                # waking it for the others saves a thread switch per request.
                self._wakeup.notify()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._heap:
                    self._wakeup.wait()
                at, _, deadline = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._wakeup.wait(wait)
                    continue
                heapq.heappop(self._heap)
            # A deadline moved later has its own, later entry in the heap already.
            deadline._fire(time.monotonic())


WATCHDOG = Watchdog()
_current = threading.local()


def arm(seconds: float) -> Deadline:
    """A deadline `seconds` from now, on the process's watchdog."""
    return WATCHDOG.arm(seconds)


class PeerRefused(NewConnectionError):
    """A connection refused because of where it landed (see refuse_peer). Its `detail` is
    ours and safe to show: the host and the address, nothing of the request."""

    def __init__(self, conn: Any, detail: str) -> None:
        super().__init__(conn, detail)
        self.detail = detail


def refused_peer(exc: BaseException | None) -> PeerRefused | None:
    """The PeerRefused somewhere under an error from requests or urllib3, if any."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, PeerRefused):
            return exc
        seen += 1
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) and exc.args and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        exc = inner if isinstance(inner, BaseException) else exc.__cause__ or exc.__context__
    return None


class _DeadlineConnectionMixin:
    sock: Any
    host: str
    # Set on the connections of a client that may reach public addresses only (a workspace
    # connection's base URL, typed by a manager, not by the operator): given the address the
    # socket actually connected to, why it is refused, or None. Checking the connected peer,
    # not a lookup made earlier, leaves DNS no window to point the name elsewhere meanwhile.
    refuse_peer: Callable[[str], str | None] | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        if self.refuse_peer is not None:
            peer = sock.getpeername()[0]
            reason = self.refuse_peer(peer)
            if reason is not None:
                sock.close()
                raise PeerRefused(
                    self,  # type: ignore[arg-type]
                    f"Refused to connect to {self.host}: it is at a {reason} address ({peer}), "
                    "and only public addresses may be reached unless an operator lists the host "
                    "in VIDEO_FETCH_ALLOW_HOSTS.",
                )
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.attach(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        # A reused keep-alive connection already has its socket.
        deadline = getattr(_current, "deadline", None)
        if deadline is not None and self.sock is not None:
            deadline.attach(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _DeadlineHTTPConnection(_DeadlineConnectionMixin, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineConnectionMixin, HTTPSConnection):
    pass


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_POOL_CLASSES = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


def _guarded_pool_classes(refuse_peer: Callable[[str], str | None]) -> dict[str, type]:
    """Pool classes whose connections refuse a peer `refuse_peer` names a reason for."""
    check = staticmethod(refuse_peer)
    http = type("_GuardedHTTPConnection", (_DeadlineHTTPConnection,), {"refuse_peer": check})
    https = type("_GuardedHTTPSConnection", (_DeadlineHTTPSConnection,), {"refuse_peer": check})
    return {
        "http": type("_GuardedHTTPPool", (_DeadlineHTTPPool,), {"ConnectionCls": http}),
        "https": type("_GuardedHTTPSPool", (_DeadlineHTTPSPool,), {"ConnectionCls": https}),
    }


class DeadlineHTTPAdapter(HTTPAdapter):
    """A requests adapter whose connections obey the deadline applied on their thread, and,
    given `refuse_peer`, connect to no address it names a reason against."""

    def __init__(self, *args: Any, refuse_peer: Callable[[str], str | None] | None = None, **kwargs: Any):
        self._pool_classes = _POOL_CLASSES if refuse_peer is None else _guarded_pool_classes(refuse_peer)
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        # Through a proxy the operator configured, the proxy is the peer and resolves the
        # name itself: the operator's choice, so the plain classes.
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


__all__ = ["WATCHDOG", "Deadline", "DeadlineHTTPAdapter", "PeerRefused", "Watchdog", "arm", "refused_peer"]
