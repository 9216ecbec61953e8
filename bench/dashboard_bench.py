"""How the dashboard holds up with many tasks: one user with N tasks (10,000 by default).

    .venv/bin/python bench/dashboard_bench.py [--tasks 10000] [--rounds 30]

Uses a throwaway SQLite file unless DATABASE_URL points elsewhere (then a database is
created there and dropped after, as the test runner does). Prints, for each request the
page makes, the median and 95th-percentile time and the number of SQL queries.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="dashboard-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch}/bench.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    setup_test_environment()
    if connection.vendor != "sqlite":
        # A name of its own, so a test run on the same server cannot collide with it.
        test = connection.settings_dict.setdefault("TEST", {})
        test["NAME"] = f"test_{connection.settings_dict['NAME']}_dashboard_bench_{os.getpid()}"
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        run(args, connection, CaptureQueriesContext, settings)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(args, connection, CaptureQueriesContext, settings) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from videos.models import Status, VideoTask

    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    other = get_user_model().objects.create_user("other", password="other-password-1")
    start = timezone.now() - timedelta(days=30)
    statuses = [Status.COMPLETED] * 6 + [Status.FAILED] * 2 + [Status.PROCESSING, Status.PENDING]
    for owner, count in ((user, args.tasks), (other, args.tasks)):
        VideoTask.objects.bulk_create(
            [
                VideoTask(
                    owner=owner,
                    task_id=f"video_{owner.pk}_{i:06d}",
                    label=f"Take {i}",
                    model="veo-3" if i % 3 else "sora-2",
                    status=statuses[i % len(statuses)],
                    progress=100 if i % 10 < 6 else 40,
                    size="1280x720",
                    created_at=start + timedelta(seconds=i * 60),
                    changed_at=start + timedelta(seconds=i * 60),
                )
                for i in range(count)
            ],
            batch_size=2000,
        )
    client = Client()
    client.force_login(user)
    html = client.get("/").content.decode()
    values = re.search(r'hx-vals="([^"]*)"', html).group(1).replace("&quot;", '"')
    token = re.search(r'"token": "([^"]*)"', values).group(1)
    ids = re.search(r'"ids": "([^"]*)"', values).group(1)
    older = re.search(r'<a href="([^"]+)" rel="next">', html).group(1).replace("&amp;", "&")

    cases = [
        ("dashboard, first page", lambda: client.get("/")),
        ("dashboard, an older page", lambda: client.get(older)),
        ("dashboard, status filter", lambda: client.get("/", {"status": "failed"})),
        ("dashboard, search", lambda: client.get("/", {"q": "Take 99"})),
        (
            "live refresh, nothing changed (204)",
            lambda: client.get("/tasks/live/", {"token": token, "ids": ids}, headers={"HX-Request": "true"}),
        ),
        (
            "live refresh, rows changed",
            lambda: client.get("/tasks/live/", {"token": "0~x", "ids": ids}, headers={"HX-Request": "true"}),
        ),
    ]
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"{args.tasks:,} tasks for the user (and as many for another user), {engine}, {args.rounds} rounds")
    print(f"{'request':<40} {'median':>9} {'p95':>9} {'queries':>8}  status")
    for name, call in cases:
        call()  # warm up
        times = []
        for _ in range(args.rounds):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = call()
                times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        median = statistics.median(times)
        print(f"{name:<40} {median:>7.1f}ms {p95:>7.1f}ms {len(queries):>8}  {response.status_code}")


if __name__ == "__main__":
    main()
