"""A fixed pool of daemon threads that run blocking HTTP calls for the poller.

Not `concurrent.futures.ThreadPoolExecutor`, for two reasons. Its threads are joined at
interpreter exit, so one request stuck in a slow read would hold a stopping worker past the
platform's grace period (Fly gives 5 s); daemon threads let the process exit once the poller
has handed back the tasks whose answers it will not wait for. And results arrive on one
queue the caller reads in O(1), instead of `wait()` re-scanning every pending future on each
completion, which matters at hundreds of answers a second.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

# Put on the results queue for a job dropped before it ran (see `Job.cancelled`).
NOT_RUN = object()


class FetchPool:
    def __init__(self, size: int, name: str = "fetch") -> None:
        self._jobs: queue.SimpleQueue[
            tuple[Any, Callable[[], Any], queue.SimpleQueue, threading.Event] | None
        ] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(
        self, key: Any, fn: Callable[[], Any], results: queue.SimpleQueue, cancelled: threading.Event
    ) -> None:
        """Run `fn()` on a pool thread; put `(key, value, error)` on `results` when done.

        If `cancelled` is set before the job starts, it does not run and `(key, NOT_RUN,
        None)` is put instead, so the caller can account for every job it submitted.
        """
        self._jobs.put((key, fn, results, cancelled))

    def shutdown(self) -> None:
        """Ask the threads to finish after their current job; does not wait for them."""
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            key, fn, results, cancelled = job
            if cancelled.is_set():
                results.put((key, NOT_RUN, None))
                continue
            try:
                results.put((key, fn(), None))
            except BaseException as exc:  # handed to the caller with the result
                results.put((key, None, exc))
