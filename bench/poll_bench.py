"""How fast the poller gets through a backlog, next to the two obvious ways of asking.

    .venv/bin/python bench/poll_bench.py [--tasks 2000] [--latency 100] [--concurrency 64]
                                         [--serial-sample 100] [--connections 0]
                                         [--check] [--profile]

(`make bench` runs it with these defaults, then the dashboard benchmark.)

Starts the fake provider in `bench/fake_provider.py` as a separate process on loopback, so
its CPU does not share our GIL, answering every status request after `--latency` ms.
Creates `--tasks` due, active tasks, then measures in one run, in this order:

1. serial loop: one `requests.get` after another on one `requests.Session`, as a provider's
   documentation shows. At ~10 tasks/s all of them would take minutes, so it runs over the
   first `--serial-sample` tasks and only its rate is compared.
2. bare client: `--concurrency` threads sharing one pooled `requests.Session`, fetching every
   task's status and decoding the JSON, nothing else. The ceiling for a threaded Python client
   on this machine.
3. poller: one `videos.polling.Poller.run_pass()` at the same concurrency, end to end:
   claiming, requests, normalising, writing the results and timeline events. Afterwards it
   checks that every task was polled exactly once and that the provider saw one request per
   task; a failed check exits 1 whatever the figures.

`--connections N` puts the tasks on N workspace connections (each in a workspace of its own,
with a key of its own, all on the same fake provider) instead of the deployment's own, round
robin: the poller then keeps a client, a state row and a claim filter per connection, as a
deployment with many teams does.

Each client is warmed up first (connections opened, the database touched) outside the timing.
The targets at 100 ms, 2,000 tasks and concurrency 64: the poller at least 40x the serial
loop and at least 80% of the bare client. The exit status is 0 whatever the figures, unless
`--check` is given: then a missed target exits 1.

`--profile` then looks for where the time goes, outside the measured runs: our
`VideoAPIClient` alone in the bare client's threads (the client's own cost per request), a
pass over fresh tasks with its phases timed on the main thread (claiming, waiting for
answers, normalising, writing: wall and CPU time each), and a pass under cProfile (the main
thread, by function). The profiler slows its pass down; only the table's figures count.

Uses a throwaway SQLite database unless DATABASE_URL points elsewhere (then a database is
created there and dropped after, as the test runner does). The worker's log lines are
formatted as in production and written to /dev/null, so their cost is counted but they do
not flood the output.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

API_KEY = "sk-bench"
TARGET_VS_SERIAL = 40.0
TARGET_VS_BARE = 0.80
# Generous: a request to a loopback server answering in ~latency should never get near it,
# and a timeout here would show up as a failed check, not as a silently faster run.
REQUEST_TIMEOUT = 30.0
# Warm-up requests ask for IDs that are not in the database, so they cannot count as polls.
WARMUP_PREFIX = "warmup_"


@dataclass
class Sample:
    """One measured run: wall time, and what each side spent meanwhile."""

    method: str
    tasks: int
    seconds: float
    requests_seen: int  # by the provider
    server_cpu: float
    client_cpu: float  # this process, every thread
    main_cpu: float  # this process, the calling thread only

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds

    @property
    def cpu_ms_per_task(self) -> float:
        return self.client_cpu / self.tasks * 1000


class Provider:
    """The fake provider subprocess, and how to ask it what it has seen."""

    def __init__(self, latency_ms: float) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "fake_provider.py"),
                "--port",
                "0",
                "--latency",
                str(latency_ms),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise SystemExit(f"the fake provider did not start (it printed {line!r})")
        self.port = int(line)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        # Its own connection, so asking for stats never takes one from a measured pool.
        self._session = requests.Session()

    def stats(self) -> dict[str, Any]:
        response = self._session.get(f"http://127.0.0.1:{self.port}/_bench/stats", timeout=5)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Meter:
    """Measures one run: `with Meter(provider) as m: ...`, then `m.sample(method, tasks)`."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def __enter__(self) -> Meter:
        self.before = self.provider.stats()
        self.cpu, self.main_cpu = time.process_time(), time.thread_time()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.cpu, self.main_cpu = time.process_time() - self.cpu, time.thread_time() - self.main_cpu
        self.after = self.provider.stats()

    def sample(self, method: str, tasks: int) -> Sample:
        return Sample(
            method=method,
            tasks=tasks,
            seconds=self.seconds,
            requests_seen=self.after["requests"] - self.before["requests"],
            server_cpu=self.after["cpu_seconds"] - self.before["cpu_seconds"],
            client_cpu=self.cpu,
            main_cpu=self.main_cpu,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=100.0, help="provider latency in milliseconds")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--serial-sample", type=int, default=100, help="tasks the serial loop asks about")
    parser.add_argument(
        "--connections",
        type=int,
        default=0,
        help="spread the tasks over this many workspace connections (0: the deployment's own)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--profile", action="store_true", help="profile a second poller pass")
    parser.add_argument("--profile-top", type=int, default=25, help="entries of the profile to print")
    args = parser.parse_args()
    if args.tasks < 1 or args.concurrency < 1 or args.serial_sample < 1 or args.connections < 0:
        parser.error("--tasks, --concurrency and --serial-sample must be at least 1, --connections 0 or more")
    args.serial_sample = min(args.serial_sample, args.tasks)

    provider = Provider(args.latency)
    # tests.settings names the SQLite file the test database lives in; this one only has to
    # be a path, and its directory goes when the run ends.
    scratch = tempfile.TemporaryDirectory(prefix="poll-bench-")
    try:
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch.name}/bench.sqlite3")
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        # The poller is built from these arguments below; the settings say the same so the
        # system checks and anything reading them agree.
        os.environ["VIDEO_API_BASE_URL"] = provider.base_url
        os.environ["VIDEO_API_KEY"] = API_KEY
        os.environ["VIDEO_POLL_CONCURRENCY"] = str(args.concurrency)
        # --connections: workspace connections reach loopback only when the operator says so.
        os.environ["VIDEO_FETCH_ALLOW_HOSTS"] = "127.0.0.1"
        import django

        django.setup()
        from django.db import connection
        from django.test.utils import setup_test_environment

        setup_test_environment()
        quiet_logs()
        if connection.vendor != "sqlite":
            # Not the test suite's database name: a test run at the same time would find its
            # database taken, or the bench would find the suite's and stop to ask.
            test = connection.settings_dict.setdefault("TEST", {})
            test["NAME"] = f"test_{connection.settings_dict['NAME']}_poll_bench_{os.getpid()}"
        old_name = connection.creation.create_test_db(verbosity=0)
        try:
            status = run(args, provider, connection)
        finally:
            connection.close()
            connection.creation.destroy_test_db(old_name, verbosity=0)
    finally:
        provider.stop()
        scratch.cleanup()
    sys.exit(status)


def quiet_logs() -> None:
    """Send the worker's log lines to /dev/null: still formatted and written, as in production."""
    import logging

    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for logger in (logging.getLogger(), logging.getLogger("django")):
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)


def run(args: argparse.Namespace, provider: Provider, connection: Any) -> int:
    task_ids = create_tasks(args.tasks, args.connections)
    warmup_ids = [f"{WARMUP_PREFIX}{i}" for i in range(args.concurrency)]

    print(
        f"Poll benchmark: {args.tasks:,} active tasks, provider latency {args.latency:g} ms, "
        f"concurrency {args.concurrency}, "
        + (
            f"on {args.connections} workspace connections"
            if args.connections
            else "on the deployment's connection"
        )
    )
    print(f"machine: {machine()}; Python {platform.python_version()}; database {database(connection)}")
    busy = busy_machine()
    if busy:
        print(busy)
    print()

    serial = measure_serial(provider, task_ids[: args.serial_sample], warmup_ids)
    bare = measure_bare(provider, task_ids, warmup_ids, args.concurrency)
    poller, report = measure_poller(provider, args, warmup_ids)

    problems = verify(args, serial, bare, poller, report)
    print_table([serial, bare, poller], serial, bare)
    print(
        f"The serial loop asked about {serial.tasks:,} of the {args.tasks:,} tasks: all of them would "
        f"take about {args.tasks / serial.rate:,.0f} s. Its rate is what is compared."
    )
    vs_serial, vs_bare = poller.rate / serial.rate, poller.rate / bare.rate
    missed = []
    print()
    line = f"poller / serial = {vs_serial:.1f} (target ≥ {TARGET_VS_SERIAL:g})"
    if vs_serial < TARGET_VS_SERIAL:
        missed.append("poller / serial")
        line += "  MISSED"
    print(line)
    line = f"poller / bare = {vs_bare:.0%} (target ≥ {TARGET_VS_BARE:.0%})"
    if vs_bare < TARGET_VS_BARE:
        missed.append("poller / bare")
        line += "  MISSED"
    print(line)
    print()
    print_cpu([serial, bare, poller], provider)
    print(f"poller pass: {report}")

    if args.profile:
        print()
        profile_pass(args, provider, warmup_ids, bare, poller)

    if problems:
        print()
        print("The run did not do what it claims to measure, so its figures mean nothing:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    if args.check and missed:
        print(f"\n--check: missed {', '.join(missed)}")
        return 1
    return 0


def create_tasks(count: int, connections: int = 0) -> list[str]:
    """`count` tasks that have never been polled: pending, next_poll_at unset, so all are due.
    On the deployment's own connection (in the owner's personal workspace), or round robin
    on `connections` workspace connections to the same provider, each in its own workspace."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from videos.models import ProviderConnection, VideoTask, Workspace

    owner, _ = get_user_model().objects.get_or_create(username="bench")
    now = timezone.now()
    ids = [f"video_bench_{i:06d}" for i in range(count)]
    spread: list[tuple[Any, Any]] = [(None, None)]
    if connections:
        spread = []
        for n in range(connections):
            workspace, _ = Workspace.objects.get_or_create(slug=f"bench-{n}", defaults={"name": f"Bench {n}"})
            connection = ProviderConnection.objects.filter(workspace=workspace).first()
            if connection is None:
                connection = ProviderConnection(
                    workspace=workspace, name=f"Bench {n}", base_url=settings.VIDEO_API_BASE_URL
                )
                connection.set_api_key(f"{API_KEY}-{n}-0123456789")
                connection.save()
            spread.append((workspace, connection))
    VideoTask.objects.bulk_create(
        [
            VideoTask(
                owner=owner,
                task_id=task_id,
                next_poll_at=None,
                created_at=now,
                changed_at=now,
                **(
                    {"workspace": spread[i % len(spread)][0], "connection": spread[i % len(spread)][1]}
                    if connections
                    else {}
                ),
            )
            for i, task_id in enumerate(ids)
        ],
        batch_size=1000,
    )
    return ids


def status_url(base_url: str, task_id: str) -> str:
    return f"{base_url}/videos/{quote(task_id, safe='')}"


def measure_serial(provider: Provider, task_ids: list[str], warmup_ids: list[str]) -> Sample:
    """What a provider's quick-start does: ask about each task in turn, waiting for each answer."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {API_KEY}"

    def fetch(task_id: str) -> dict[str, Any]:
        response = session.get(status_url(provider.base_url, task_id), timeout=REQUEST_TIMEOUT)
        response.raise_for_status()
        return response.json()

    for task_id in warmup_ids[:3]:
        fetch(task_id)
    with Meter(provider) as meter:
        for task_id in task_ids:
            fetch(task_id)
    session.close()
    return meter.sample("serial loop (1 session)", len(task_ids))


def measure_bare(provider: Provider, task_ids: list[str], warmup_ids: list[str], concurrency: int) -> Sample:
    """The threaded ceiling: the same requests at the same concurrency, and nothing else."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {API_KEY}"
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=concurrency, max_retries=0)
    session.mount("http://", adapter)
    urls = [status_url(provider.base_url, task_id) for task_id in task_ids]

    def fetch(url: str) -> dict[str, Any]:
        response = session.get(url, timeout=REQUEST_TIMEOUT)
        response.raise_for_status()
        return response.json()

    sample = threaded(
        provider,
        fetch,
        urls,
        [status_url(provider.base_url, task_id) for task_id in warmup_ids],
        concurrency,
        f"bare client ({concurrency} threads)",
    )
    session.close()
    return sample


def threaded(
    provider: Provider, fetch: Any, items: list[str], warmup: list[str], concurrency: int, method: str
) -> Sample:
    with ThreadPoolExecutor(concurrency) as pool:
        # One request per thread opens every pooled connection before the clock starts.
        list(pool.map(fetch, warmup))
        with Meter(provider) as meter:
            list(pool.map(fetch, items))
    return meter.sample(method, len(items))


def measure_client_only(provider: Provider, args: argparse.Namespace, warmup_ids: list[str]) -> Sample:
    """Our VideoAPIClient in the bare client's threads, no database: how much of the gap
    between the poller and the bare client is the client's own work per request."""
    from videos.client import VideoAPIClient

    client = VideoAPIClient(provider.base_url, API_KEY, timeout=REQUEST_TIMEOUT, pool_size=args.concurrency)
    task_ids = [f"video_bench_{i:06d}" for i in range(args.tasks)]
    sample = threaded(
        provider, client.retrieve, task_ids, warmup_ids, args.concurrency, "VideoAPIClient.retrieve only"
    )
    client.close()
    return sample


def build_poller(provider: Provider, args: argparse.Namespace, warmup_ids: list[str]) -> Any:
    from django.conf import settings

    from videos.client import VideoAPIClient
    from videos.polling import Poller

    client = VideoAPIClient(provider.base_url, API_KEY, timeout=REQUEST_TIMEOUT, pool_size=args.concurrency)
    poller = Poller(client, interval=settings.VIDEO_POLL_INTERVAL, concurrency=args.concurrency)
    # Open every pooled connection, as for the bare client, and create the provider's row and
    # the database connection: first-run costs a running worker has long paid. With
    # workspace connections, the same for the client the poller keeps for each, with its
    # share of the threads (twice over): a pass never has more requests in flight than that.
    clients, warm = [client], warmup_ids
    if args.connections:
        from videos.models import ProviderConnection

        clients = [poller.client_for(pk) for pk in ProviderConnection.objects.values_list("pk", flat=True)]
        warm = warmup_ids[: max(4, 2 * -(-args.concurrency // args.connections))]
    with ThreadPoolExecutor(args.concurrency) as pool:
        for each in clients:
            list(pool.map(each.retrieve, warm))
    poller.provider_state()
    return poller


def measure_poller(provider: Provider, args: argparse.Namespace, warmup_ids: list[str]) -> tuple[Sample, Any]:
    poller = build_poller(provider, args, warmup_ids)
    try:
        with Meter(provider) as meter:
            report = poller.run_pass()
    finally:
        poller.close()
    return meter.sample(f"poller run_pass ({args.concurrency})", args.tasks), report


def verify(args: argparse.Namespace, serial: Sample, bare: Sample, poller: Sample, report: Any) -> list[str]:
    """What must hold for the figures to mean anything; each failure as a sentence."""
    from django.db.models import Count

    from videos.models import VideoTask

    problems = []
    for sample in (serial, bare, poller):
        if sample.requests_seen != sample.tasks:
            problems.append(
                f"{sample.method}: the provider received {sample.requests_seen:,} requests for "
                f"{sample.tasks:,} tasks"
            )
    if report.polled != args.tasks or report.errors:
        problems.append(f"the pass polled {report.polled:,} of {args.tasks:,} tasks ({report})")
    counts = dict(VideoTask.objects.order_by().values_list("poll_count").annotate(n=Count("pk")))
    if counts != {1: args.tasks}:
        shown = ", ".join(f"{n:,} tasks polled {k} times" for k, n in sorted(counts.items()))
        problems.append(f"not every task was polled exactly once: {shown}")
    leased = VideoTask.objects.filter(lease_token__isnull=False).count()
    if leased:
        problems.append(f"{leased:,} tasks are still leased after the pass")
    status = "ok" if not problems else "FAILED"
    print(
        f"check {status}: poller polled {report.polled:,} of {args.tasks:,}; poll_count per task "
        f"{dict(sorted(counts.items()))}; provider saw {poller.requests_seen:,} requests during the pass"
    )
    print()
    return problems


def print_table(samples: list[Sample], serial: Sample, bare: Sample) -> None:
    print(f"{'method':<28} {'tasks':>7} {'seconds':>9} {'tasks/s':>9} {'vs serial':>10} {'vs bare':>8}")
    for s in samples:
        print(
            f"{s.method:<28} {s.tasks:>7,} {s.seconds:>9.2f} {s.rate:>9.1f} "
            f"{s.rate / serial.rate:>9.1f}x {s.rate / bare.rate:>8.0%}"
        )


def print_cpu(samples: list[Sample], provider: Provider) -> None:
    """CPU each side spent per run: the provider should be far from a full core."""
    print("CPU during each run (seconds, and share of one core over the run's wall time):")
    print(f"{'method':<28} {'fake provider':>16} {'client, all threads':>22} {'client, main thread':>22}")
    for s in samples:
        print(
            f"{s.method:<28} {s.server_cpu:>7.2f} s {s.server_cpu / s.seconds:>5.0%} "
            f"{s.client_cpu:>12.2f} s {s.client_cpu / s.seconds:>5.0%} "
            f"{s.main_cpu:>12.2f} s {s.main_cpu / s.seconds:>5.0%}"
        )
    stats = provider.stats()
    print(
        f"fake provider: {stats['cpu_seconds']:.2f} s CPU in all (start-up included), "
        f"{stats['requests']:,} requests, at most {stats['peak_connections']} connections at once"
    )


class PhaseTimer:
    """Times the phases of a pass on the calling thread, by wrapping the functions doing them.

    Records wall time (which includes time blocked on the database and time waiting to get
    the GIL back from the request threads) and the thread's own CPU time, so the gap between
    the two shows what is waiting rather than working. Wraps by name, trying the names the
    poller has had; a phase whose functions are not found is reported as not timed.
    Nested calls count once, in the outermost timed phase.
    """

    def __init__(self, poller: Any) -> None:
        from videos.models import VideoTaskQuerySet

        self.phases = (
            ("waiting for answers", poller, ("_next_result",)),
            ("normalise + apply", poller, ("_fold", "_apply")),
            # The connections' state rows, read on each claim (provider_state before
            # tasks were polled per connection), and the connections every few seconds.
            ("DB: connection states", poller, ("_read_states", "provider_state")),
            ("DB: connections", poller, ("_refresh_connections",)),
            ("DB: claiming", VideoTaskQuerySet, ("claim_due",)),
            ("DB: writing results", VideoTaskQuerySet, ("save_poll_results",)),
            ("DB: handing back", VideoTaskQuerySet, ("release",)),
        )
        self.wall: Counter[str] = Counter()
        self.cpu: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.missing: list[str] = []
        self._inside = False
        self._thread = threading.get_ident()
        self._undo: list[Any] = []

    def __enter__(self) -> PhaseTimer:
        for phase, owner, names in self.phases:
            name = next((n for n in names if hasattr(owner, n)), None)
            if name is None:
                self.missing.append(phase)
                continue
            if isinstance(owner, type):
                raw = owner.__dict__[name]
                if isinstance(raw, staticmethod):
                    setattr(owner, name, staticmethod(self._timed(phase, raw.__func__)))
                else:
                    setattr(owner, name, self._timed(phase, raw))
                self._undo.append(lambda owner=owner, name=name, raw=raw: setattr(owner, name, raw))
            else:
                # An instance attribute shadows the method for this poller only.
                setattr(owner, name, self._timed(phase, getattr(owner, name)))
                self._undo.append(lambda owner=owner, name=name: delattr(owner, name))
        return self

    def __exit__(self, *exc: object) -> None:
        for undo in reversed(self._undo):
            undo()

    def _timed(self, phase: str, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._inside or threading.get_ident() != self._thread:
                return fn(*args, **kwargs)
            self._inside = True
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[phase] += time.perf_counter() - wall
                self.cpu[phase] += time.thread_time() - cpu
                self.calls[phase] += 1
                self._inside = False

        return timed


def profile_pass(
    args: argparse.Namespace, provider: Provider, warmup_ids: list[str], bare: Sample, poller: Sample
) -> None:
    """Two more passes over fresh tasks: one with its phases timed (where the main thread's
    wall time goes), one under cProfile (by function; it sees only the calling thread and
    slows pure-Python code down, so it overstates CPU work next to waiting)."""
    from videos.models import TaskEvent, VideoTask

    def fresh_pass(watch: Any) -> tuple[float, float, Any, Any]:
        """One pass over new tasks inside the context manager `watch(poller)` returns."""
        TaskEvent.objects.all().delete()
        VideoTask.objects.all().delete()
        create_tasks(args.tasks, args.connections)
        poller = build_poller(provider, args, warmup_ids)
        try:
            with watch(poller) as watcher:
                started, cpu = time.perf_counter(), time.thread_time()
                report = poller.run_pass()
                seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
        finally:
            poller.close()
        return seconds, cpu, report, watcher

    client = measure_client_only(provider, args, warmup_ids)
    print(
        f"{client.method} in {args.concurrency} threads, no database: {client.rate:.1f} tasks/s "
        f"({client.rate / bare.rate:.0%} of the bare client); this process's CPU per task: "
        f"{client.cpu_ms_per_task:.2f} ms (bare client {bare.cpu_ms_per_task:.2f} ms, "
        f"poller {poller.cpu_ms_per_task:.2f} ms)"
    )
    seconds, cpu, report, timer = fresh_pass(PhaseTimer)
    print(
        f"Where the poller's main thread spends a pass (its functions timed): {seconds:.2f} s, "
        f"{args.tasks / seconds:.1f} tasks/s, main thread CPU {cpu:.2f} s; {report}"
    )
    print(f"  {'phase':<28} {'calls':>6} {'wall':>8} {'share':>6} {'CPU':>8} {'wall - CPU':>11}")
    rows = [(phase, timer.calls[phase], timer.wall[phase], timer.cpu[phase]) for phase in timer.wall]
    rest = ("the loop, everything else", 0, seconds - sum(timer.wall.values()), cpu - sum(timer.cpu.values()))
    for phase, calls, wall, phase_cpu in [*sorted(rows, key=lambda row: -row[2]), rest]:
        print(
            f"  {phase:<28} {calls or '':>6} {wall:>7.2f}s {wall / seconds:>6.0%} {phase_cpu:>7.2f}s "
            f"{wall - phase_cpu:>10.2f}s"
        )
    print("  (wall - CPU: time the main thread was blocked on the database, the queue, or the GIL)")
    if timer.missing:
        print(f"  not timed (functions not found): {', '.join(timer.missing)}")

    seconds, cpu, report, profiler = fresh_pass(lambda poller: Profiled())
    print(
        f"\nProfiled pass (main thread, cProfile; slower than the measured one): {seconds:.2f} s, "
        f"{args.tasks / seconds:.1f} tasks/s; {report}"
    )
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(args.profile_top)
        # Keep the table itself: skip pstats' preamble down to the column header.
        text = out.getvalue()
        print(f"\nTop {args.profile_top} by {key}:")
        print(text[text.find("   ncalls") :].rstrip())


class Profiled(cProfile.Profile):
    """cProfile on the calling thread, for the length of a `with` block."""

    def __enter__(self) -> Profiled:
        self.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disable()


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor() or model
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{os.cpu_count()} cores ({usable} usable), {model}"


def busy_machine() -> str:
    """A warning when other work is running: it takes cores from both processes measured here,
    which lowers the figures and makes them scatter from run to run."""
    if not hasattr(os, "getloadavg"):
        return ""
    load = os.getloadavg()[0]
    if load < 0.5:
        return ""
    return (
        f"note: the machine is not idle (load average {load:.1f} over the last minute, a run that has "
        "just ended included); other work competes for the cores, so these figures are lower and "
        "noisier than on a quiet machine"
    )


def database(connection: Any) -> str:
    if connection.vendor == "postgresql":
        version = connection.pg_version
        return f"PostgreSQL {version // 10000}.{version % 10000}"
    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version} (file, WAL)"
    return connection.vendor


if __name__ == "__main__":
    main()
