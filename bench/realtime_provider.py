"""A fake video provider whose jobs run in (scaled) real time, for the cadence benchmark.

    .venv/bin/python bench/realtime_provider.py --origin T --scale 10 [--seed 1] [--latency 10]

Every job is planned from its ID alone, so the benchmark knows what the provider will do
without asking: `cad-{index}-{submitted_ms}` is job `index` of the seeded plan (`job_plan`),
submitted at `submitted_ms` (virtual epoch milliseconds). It is queued for a few seconds,
then processing for 1-4 minutes with a progress that grows about linearly, with noise,
reported as a gateway does (an integer percentage that never goes down), then completed.

Time is virtual: `virtual_now(origin, scale)` runs `scale` times faster than the wall clock
from `origin` (a `time.time()` both processes agree on), so a run of minutes takes seconds
and the benchmark's poller and this server read the same clock.

Runs as its own process (like `bench/fake_provider.py`, whose protocol it reuses) so its CPU
does not compete for the GIL with the poller measured. The first line on stdout is the port;
`GET /_bench/stats` returns the request count. Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fake_provider import HOST, ProviderProtocol, Stats, response  # noqa: E402

# The jobs of the target: 1-4 minutes of processing, after a few seconds queued.
MIN_DURATION, MAX_DURATION = 60.0, 240.0
MIN_QUEUED, MAX_QUEUED = 2.0, 10.0
# Standard deviation of the noise on each progress report, in percentage points.
PROGRESS_NOISE = 2.0


@dataclass(frozen=True)
class Job:
    index: int
    submitted: float  # virtual epoch seconds
    queued: float  # seconds before processing starts
    duration: float  # seconds of processing

    @property
    def starts(self) -> float:
        return self.submitted + self.queued

    @property
    def finishes(self) -> float:
        """When the provider starts answering "completed" (virtual epoch seconds)."""
        return self.starts + self.duration


def job_plan(seed: int, index: int, submitted: float) -> Job:
    rng = random.Random(seed * 1_000_003 + index)
    return Job(
        index=index,
        submitted=submitted,
        queued=rng.uniform(MIN_QUEUED, MAX_QUEUED),
        duration=rng.uniform(MIN_DURATION, MAX_DURATION),
    )


def task_id(index: int, submitted: float) -> str:
    return f"cad-{index}-{round(submitted * 1000)}"


def parse_task_id(text: str) -> tuple[int, float] | None:
    parts = text.split("-")
    if len(parts) != 3 or parts[0] != "cad" or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return int(parts[1]), int(parts[2]) / 1000


def virtual_now(origin: float, scale: float) -> float:
    return origin + (time.time() - origin) * scale


class Jobs:
    """What each job says at a moment: its plan, and the progress it has reported so far."""

    def __init__(self, seed: int, origin: float, scale: float) -> None:
        self.seed = seed
        self.origin = origin
        self.scale = scale
        self.reported: dict[str, int] = {}
        self.noise = random.Random(seed)

    def answer(self, text: str) -> tuple[str, bytes]:
        parsed = parse_task_id(text)
        if parsed is None:
            return "404 Not Found", b'{"error": {"message": "not found", "code": "not_found"}}'
        job = job_plan(self.seed, *parsed)
        now = virtual_now(self.origin, self.scale)
        body: dict = {"id": text, "object": "video", "model": "sora-2", "created_at": int(job.submitted)}
        if now < job.starts:
            body |= {"status": "queued", "progress": 0}
        elif now < job.finishes:
            pace = 100 * (now - job.starts) / job.duration
            seen = round(pace + self.noise.gauss(0, PROGRESS_NOISE))
            # A gateway never reports less than before, nor 100 before the job is done.
            progress = max(self.reported.get(text, 0), min(99, max(0, seen)))
            self.reported[text] = progress
            body |= {"status": "in_progress", "progress": progress}
        else:
            body |= {"status": "completed", "progress": 100, "completed_at": int(job.finishes)}
        return "200 OK", json.dumps(body).encode()


class RealtimeProtocol(ProviderProtocol):
    jobs: Jobs

    def _answer(self, task_id: str, close: bool) -> None:
        self.busy = False
        status, body = self.jobs.answer(task_id)
        self._send(response(status, body), close=close)


async def serve(port: int, latency: float, jobs: Jobs) -> None:
    loop = asyncio.get_running_loop()
    stats = Stats()
    RealtimeProtocol.jobs = jobs
    server = await loop.create_server(
        lambda: RealtimeProtocol(stats, latency, 0), HOST, port, backlog=1024, reuse_address=True
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
    parser.add_argument("--origin", type=float, required=True, help="time.time() where virtual time starts")
    parser.add_argument("--scale", type=float, default=10.0, help="virtual seconds per real second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=10.0, help="real milliseconds before each answer")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.latency / 1000, Jobs(args.seed, args.origin, args.scale)))


if __name__ == "__main__":
    main()
