"""What a board costs as one workspace grows: 10,000 then 100,000 tasks in one workspace.

    .venv/bin/python bench/dashboard_bench.py [--sizes 10000,100000] [--rounds 40]

Each size is a workspace of its own, and their requests are taken in turn. For each it
measures, through Django's test client, the median and 95th-percentile
time and the SQL queries of:

- an unchanged live refresh (`/w/<slug>/live/` with the page's token: 204, no template);
  it reads the workspace's version (Workspace.live_token), never the tasks, so it should
  cost the same at every size;
- the board's first page (`/w/<slug>/`);
- the admin's task list of the same rows (`/admin/videos/videotask/?workspace__id__exact=`).

Uses a throwaway SQLite file unless DATABASE_URL points elsewhere (then a database of its
own is created on that server and dropped after, as the test runner does). Rows are made
with bulk_create in batches of 5,000; on PostgreSQL the table is ANALYZEd after, as
autovacuum would do on a live server.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH = 5_000


@dataclass
class Measure:
    size: int
    name: str
    median_ms: float
    p95_ms: float
    queries: int
    status: int


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated task counts, growing")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))

    scratch = tempfile.mkdtemp(prefix="dashboard-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch}/bench.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    if connection.vendor != "sqlite":
        # A name of its own, so a test run on the same server cannot collide with it.
        test = connection.settings_dict.setdefault("TEST", {})
        test["NAME"] = f"test_{connection.settings_dict['NAME']}_dashboard_bench_{os.getpid()}"
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        report(run(sizes, args.rounds, connection), connection, args.rounds)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def add_tasks(workspace: Any, owner: Any, start: int, stop: int) -> float:
    """Tasks `start`..`stop` of the workspace, one a minute, newest last; seconds taken."""
    from videos.models import Status, VideoTask

    began = time.perf_counter()
    first = workspace.created_at - timedelta(days=200)
    # Mostly finished, as a team's history is; the newest page has unfinished tasks, so the
    # board polls.
    statuses = [Status.COMPLETED] * 6 + [Status.FAILED] * 2 + [Status.PROCESSING, Status.PENDING]
    for low in range(start, stop, BATCH):
        VideoTask.objects.bulk_create(
            [
                VideoTask(
                    workspace=workspace,
                    owner=owner,
                    task_id=f"video_{i:07d}",
                    label=f"Take {i}",
                    model="veo-3" if i % 3 else "sora-2",
                    status=statuses[i % len(statuses)],
                    progress=100 if i % 10 < 6 else 40,
                    size="1280x720",
                    seconds="8",
                    created_at=first + timedelta(minutes=i),
                    changed_at=first + timedelta(minutes=i),
                )
                for i in range(low, min(stop, low + BATCH))
            ],
            batch_size=BATCH,
        )
    return time.perf_counter() - began


def board_of(workspace: Any, owner: Any, ops: Any) -> list[tuple[str, Callable[[], Any], int]]:
    """The requests measured on one workspace: (name, call, expected HTTP status)."""
    from django.test import Client
    from django.urls import reverse

    board = Client()
    board.force_login(owner)
    admin = Client()
    admin.force_login(ops)
    board_url = reverse("videos:board", args=[workspace.slug])
    live_url = reverse("videos:board_live", args=[workspace.slug])
    admin_url = reverse("admin:videos_videotask_changelist") + f"?workspace__id__exact={workspace.pk}"

    html = board.get(board_url).content.decode()
    live = re.search(r'id="live"[^>]*hx-vals="([^"]*)"', html)
    assert live, "the board does not poll: no unfinished task on its first page"
    values = live.group(1).replace("&quot;", '"')
    query = {
        "token": re.search(r'"token": "([^"]*)"', values).group(1),
        "ids": re.search(r'"ids": "([^"]*)"', values).group(1),
    }
    return [
        ("unchanged live refresh", lambda: board.get(live_url, query, headers={"HX-Request": "true"}), 204),
        ("board, first page", lambda: board.get(board_url), 200),
        ("admin changelist", lambda: admin.get(admin_url), 200),
    ]


def run(sizes: list[int], rounds: int, connection: Any) -> list[Measure]:
    """One workspace per size, side by side in one database, and their requests taken in
    turn (10k, 100k, 10k, 100k...), so a busy machine slows both sizes alike."""
    from django.contrib.auth import get_user_model
    from django.test.utils import CaptureQueriesContext

    from teams.models import Membership, Role, Workspace

    users = get_user_model().objects
    owner = users.create_user("bench", password="bench-password-1")
    ops = users.create_superuser("ops", "ops@example.com", "ops-password-1")
    boards = {}
    for size in sizes:
        workspace = Workspace.objects.create(name=f"Team of {size}", slug=f"team-{size}")
        Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
        took = add_tasks(workspace, owner, 0, size)
        print(f"{size:,} tasks in one workspace (made in {took:.1f} s)", file=sys.stderr)
        boards[size] = workspace
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    requests = {size: board_of(workspace, owner, ops) for size, workspace in boards.items()}

    results: list[Measure] = []
    for case in range(len(requests[sizes[0]])):
        times: dict[int, list[float]] = {size: [] for size in sizes}
        counted: dict[int, tuple[int, int]] = {}
        for size in sizes:
            requests[size][case][1]()  # warm up (templates, content types, the session)
        for _ in range(rounds):
            for size in sizes:
                name, call, expected = requests[size][case]
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    response = call()
                    times[size].append((time.perf_counter() - started) * 1000)
                assert response.status_code == expected, f"{name}: HTTP {response.status_code}"
                counted[size] = (len(queries), response.status_code)
        for size in sizes:
            ordered = sorted(times[size])
            p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
            name = requests[size][case][0]
            results.append(Measure(size, name, statistics.median(ordered), p95, *counted[size]))
    return sorted(results, key=lambda m: m.size)


def report(results: list[Measure], connection: Any, rounds: int) -> None:
    if connection.vendor == "postgresql":
        engine = f"PostgreSQL {connection.pg_version // 10000}"
    else:
        engine = f"{connection.vendor} {'.'.join(map(str, connection.Database.sqlite_version_info))}"
    print(f"{engine}; each size a workspace of its own; {rounds} requests each, taken in turn")
    print("median / p95; queries include the session and the user")
    print(f"{'tasks':>8}  {'request':<24} {'median':>9} {'p95':>9} {'queries':>8}  status")
    for m in results:
        print(
            f"{m.size:>8,}  {m.name:<24} {m.median_ms:>7.1f}ms {m.p95_ms:>7.1f}ms {m.queries:>8}  {m.status}"
        )
    refreshes = [m for m in results if m.name == "unchanged live refresh"]
    if len(refreshes) > 1:
        small, large = refreshes[0], refreshes[-1]
        print(
            f"unchanged refresh at {large.size:,} vs {small.size:,} tasks: "
            f"{large.median_ms / small.median_ms:.2f}x the time, {large.queries} vs {small.queries} queries"
        )


if __name__ == "__main__":
    main()
