"""Requests per finished task, and how soon a finish is known: fixed 5-s polling against
the poller's cadence, on jobs that run in (scaled) real time.

    .venv/bin/python bench/cadence_bench.py [--jobs 150] [--scale 5] [--seed 1]
                                            [--spread 150] [--concurrency 16] [--check]

Starts `bench/realtime_provider.py` on loopback as a separate process: `--jobs` jobs,
submitted evenly over `--spread` seconds, each queued 2-10 s, then processing for 60-240 s
(seeded) with a progress that grows about linearly with noise, then completed. Then runs
the real `videos.polling.Poller` (its `run_pass` in a loop, idling between passes as the
worker does) on a throwaway SQLite database until every job is known to be finished, twice
over the same jobs:

1. fixed: every answer schedules the next poll one interval (5 s) later;
2. cadence: the poller's own rule (`videos.polling.poll_delay`).

Time is virtual and runs `--scale` times faster than the wall clock, for the poller (every
`timezone.now()`, so task ages, ETAs and next_poll_at) and the provider alike; the poller's
own waits in real time (idling between passes, batching writes) are divided by the scale.
Figures are reported in virtual seconds, as they would be unscaled.

For each run: requests per task (each task's poll_count; their sum is checked against the
requests the provider saw) and the delay between the provider finishing a job and the
poller writing the task's completion (median, 90th percentile, max), and "late p90": how
long after a task fell due its request was sent (the worker looks every second; more means
the machine could not keep up, which adds to both runs' delays). The issue's target:
the cadence spends at most half the requests of fixed polling, with a median delay of at
most 5 s and a 90th percentile of at most 10 s. `--check` exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.poll_bench import busy_machine, database, machine, quiet_logs  # noqa: E402
from bench.realtime_provider import MAX_DURATION, MAX_QUEUED, Job, job_plan, task_id, virtual_now  # noqa: E402

API_KEY = "sk-bench"
INTERVAL = 5.0
# What the worker idles between passes that found nothing due (worker.IDLE_CHECK_SECONDS).
IDLE = 1.0
TARGET_REQUESTS = 0.5  # of fixed polling's, at most
TARGET_MEDIAN = 5.0
TARGET_P90 = 10.0


@dataclass
class Outcome:
    name: str
    requests: list[int]  # per task
    delays: list[float]  # per task, seconds
    provider_requests: int
    unfinished: int
    wall: float
    lateness: list[float]  # per request: seconds after its task fell due that it was sent

    @property
    def mean_requests(self) -> float:
        return statistics.fmean(self.requests)

    def percentile(self, q: float, values: list[float] | None = None) -> float:
        ordered = sorted(self.delays if values is None else values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Provider:
    def __init__(self, origin: float, scale: float, seed: int, latency_ms: float) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "realtime_provider.py"),
                "--origin",
                repr(origin),
                "--scale",
                str(scale),
                "--seed",
                str(seed),
                "--latency",
                str(latency_ms),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise SystemExit(f"the realtime provider did not start (it printed {line!r})")
        self.port = int(line)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def requests(self) -> int:
        answer = requests.get(f"http://127.0.0.1:{self.port}/_bench/stats", timeout=5)
        answer.raise_for_status()
        return answer.json()["requests"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=150)
    parser.add_argument("--scale", type=float, default=5.0, help="virtual seconds per real second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spread", type=float, default=150.0, help="seconds over which jobs are submitted")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=100.0, help="provider latency, virtual ms")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.jobs < 1 or args.scale <= 0 or args.spread < 0:
        parser.error("--jobs must be at least 1, --scale above 0, --spread 0 or more")

    origin = time.time()
    provider = Provider(origin, args.scale, args.seed, args.latency / args.scale)
    scratch = tempfile.TemporaryDirectory(prefix="cadence-bench-")
    try:
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch.name}/bench.sqlite3"
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        os.environ["VIDEO_API_BASE_URL"] = provider.base_url
        os.environ["VIDEO_API_KEY"] = API_KEY
        os.environ["VIDEO_POLL_INTERVAL"] = str(INTERVAL)
        os.environ["VIDEO_KEEP"] = "0"  # no copies: only polling is measured
        import django

        django.setup()
        from django.db import connection
        from django.test.utils import setup_test_environment

        setup_test_environment()
        quiet_logs()
        old_name = connection.creation.create_test_db(verbosity=0)
        try:
            status = run(args, provider, origin, connection)
        finally:
            connection.close()
            connection.creation.destroy_test_db(old_name, verbosity=0)
    finally:
        provider.stop()
        scratch.cleanup()
    sys.exit(status)


def use_virtual_clock(origin: float, scale: float) -> None:
    """Every `timezone.now()` reads virtual time from here on; the poller's real-time waits
    shrink by the same factor."""
    from django.utils import timezone

    from videos import polling

    timezone.now = lambda: datetime.fromtimestamp(virtual_now(origin, scale), tz=UTC)
    polling.WRITE_WAIT /= scale


def run(args: argparse.Namespace, provider: Provider, origin: float, connection: Any) -> int:
    use_virtual_clock(origin, args.scale)
    print(
        f"Cadence benchmark: {args.jobs} jobs of 60-240 s (seed {args.seed}) submitted over "
        f"{args.spread:g} s, interval {INTERVAL:g} s, time scaled x{args.scale:g}, "
        f"provider latency {args.latency:g} ms"
    )
    print(f"machine: {machine()}; Python {platform.python_version()}; database {database(connection)}")
    if busy := busy_machine():
        print(busy)
    print()
    fixed = run_policy("fixed 5-s polling", args, provider, origin, fixed=True)
    cadence = run_policy("cadence (poll_delay)", args, provider, origin, fixed=False)

    problems = []
    for outcome in (fixed, cadence):
        if outcome.unfinished:
            problems.append(f"{outcome.name}: {outcome.unfinished} tasks never seen finished")
        if sum(outcome.requests) != outcome.provider_requests:
            problems.append(
                f"{outcome.name}: the tasks count {sum(outcome.requests)} requests, "
                f"the provider saw {outcome.provider_requests}"
            )
    print_table([fixed, cadence])
    ratio = cadence.mean_requests / fixed.mean_requests
    missed = []
    for label, value, target, ok in (
        ("requests vs fixed", f"{ratio:.0%}", f"≤ {TARGET_REQUESTS:.0%}", ratio <= TARGET_REQUESTS),
        (
            "median delay",
            f"{cadence.percentile(0.5):.1f} s",
            f"≤ {TARGET_MEDIAN:g} s",
            cadence.percentile(0.5) <= TARGET_MEDIAN,
        ),
        (
            "p90 delay",
            f"{cadence.percentile(0.9):.1f} s",
            f"≤ {TARGET_P90:g} s",
            cadence.percentile(0.9) <= TARGET_P90,
        ),
    ):
        print(f"cadence {label}: {value} (target {target}){'' if ok else '  MISSED'}")
        if not ok:
            missed.append(label)
    if problems:
        print("\nThe run did not do what it claims to measure, so its figures mean nothing:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    if args.check and missed:
        print(f"\n--check: missed {', '.join(missed)}")
        return 1
    return 0


def run_policy(
    name: str, args: argparse.Namespace, provider: Provider, origin: float, *, fixed: bool
) -> Outcome:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from videos import polling
    from videos.client import VideoAPIClient
    from videos.models import Status, VideoTask

    VideoTask.objects.all().delete()
    owner, _ = get_user_model().objects.get_or_create(username="bench")
    # The same plan for both runs: jobs differ only in when they are submitted (from now).
    base = virtual_now(origin, args.scale) + 2.0
    jobs: dict[str, Job] = {}
    for index in range(args.jobs):
        submitted = base + args.spread * index / args.jobs
        jobs[task_id(index, submitted)] = job_plan(args.seed, index, submitted)
    at = {key: datetime.fromtimestamp(job.submitted, tz=UTC) for key, job in jobs.items()}
    # Submitted tasks are due at once: their first poll comes as soon as they exist.
    VideoTask.objects.bulk_create(
        VideoTask(owner=owner, task_id=key, created_at=at[key], changed_at=at[key], next_poll_at=at[key])
        for key in jobs
    )
    known: dict[int, float] = {}  # pk -> virtual time its completion was written
    # When each task's next poll is due (as written), and how late each poll was sent: the
    # poller keeping up is what lets the figures speak of the cadence alone.
    due = {
        pk: job.submitted
        for pk, job in zip(
            VideoTask.objects.order_by("pk").values_list("pk", flat=True), jobs.values(), strict=True
        )
    }
    lateness: list[float] = []

    class Recording(polling.Poller):
        def _fetch(self, runtime: Any, pk: int, task_id: str) -> Any:
            lateness.append(timezone.now().timestamp() - due[pk])
            return super()._fetch(runtime, pk, task_id)

        def _write(self, results: list, report: polling.PassReport) -> None:
            super()._write(results, report)
            now = timezone.now().timestamp()
            for result in results:
                if result.task.next_poll_at is not None:
                    due[result.task.pk] = result.task.next_poll_at.timestamp()
                if result.task.status == Status.COMPLETED:
                    known.setdefault(result.task.pk, now)

    client = VideoAPIClient(provider.base_url, API_KEY, timeout=30.0, pool_size=args.concurrency)
    poller = Recording(
        client, interval=INTERVAL, concurrency=args.concurrency, rng=random.Random(args.seed).random
    )
    original = polling.poll_delay
    if fixed:
        polling.poll_delay = lambda interval, **_: interval
    before = provider.requests()
    started = time.perf_counter()
    ends = base + args.spread + MAX_QUEUED + MAX_DURATION + 300
    try:
        while len(known) < len(jobs) and virtual_now(origin, args.scale) < ends:
            if not poller.run_pass().claimed:
                time.sleep(IDLE / args.scale)
    finally:
        polling.poll_delay = original
        poller.close()
    wall = time.perf_counter() - started
    rows = {task.pk: task for task in VideoTask.objects.only("pk", "task_id", "poll_count")}
    return Outcome(
        name=name,
        requests=[task.poll_count for task in rows.values()],
        delays=[known[pk] - jobs[task.task_id].finishes for pk, task in rows.items() if pk in known],
        provider_requests=provider.requests() - before,
        unfinished=len(jobs) - len(known),
        wall=wall,
        lateness=lateness,
    )


def print_table(outcomes: list[Outcome]) -> None:
    header = (
        f"{'polling':<22} {'tasks':>5} {'req/task mean':>13} {'median':>6} "
        f"{'delay median':>12} {'p90':>6} {'max':>6} {'late p90':>8} {'wall':>6}"
    )
    print(header)
    print("-" * len(header))
    for o in outcomes:
        requests = f"{o.mean_requests:>13.1f} {statistics.median(o.requests):>6.1f}"
        delays = f"{o.percentile(0.5):>10.1f} s {o.percentile(0.9):>4.1f} s {max(o.delays):>4.1f} s"
        print(
            f"{o.name:<22} {len(o.requests):>5} {requests} {delays} "
            f"{o.percentile(0.9, o.lateness):>6.1f} s {o.wall:>4.0f} s"
        )
    print()


if __name__ == "__main__":
    main()
