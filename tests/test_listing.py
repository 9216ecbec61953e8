"""Filters, search and keyset pages on the dashboard."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from tests.pages import make_task
from videos.models import Status, VideoTask

# Filters and pages


def test_filters_and_pages_walk_every_task_once(signed_in, owner):
    start = timezone.now() - timedelta(hours=3)
    VideoTask.objects.bulk_create(
        [
            VideoTask(
                owner=owner,
                task_id=f"page-{i:03d}",
                status=Status.COMPLETED if i % 2 else Status.FAILED,
                created_at=start + timedelta(seconds=i // 3),  # ties on created_at, broken by pk
            )
            for i in range(120)
        ]
    )
    seen: list[str] = []
    url = "/"
    while url:
        html = signed_in.get(url).content.decode()
        seen += re.findall(r"<code>(page-\d+)</code>", html)
        older = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = older.group(1).replace("&amp;", "&") if older else ""
    assert len(seen) == 120
    assert seen == sorted(seen, reverse=True)

    html = signed_in.get("/", {"status": "failed", "q": "page-00"}).content.decode()
    assert re.findall(r"<code>(page-\d+)</code>", html) == [f"page-00{i}" for i in (8, 6, 4, 2, 0)]


def test_a_search_matches_label_and_model(signed_in, owner):
    make_task(owner, "a1", label="Harbour sunset", model="veo-3")
    make_task(owner, "a2", label="Forest", model="kling-2")
    assert "Harbour sunset" in signed_in.get("/", {"q": "harbour"}).content.decode()
    html = signed_in.get("/", {"q": "KLING"}).content.decode()
    assert "Forest" in html and "Harbour" not in html


def test_bad_filter_values_are_ignored_with_a_word(signed_in, owner):
    make_task(owner, "x1")
    response = signed_in.get("/", {"status": "bogus", "before": "not-a-cursor", "q": "x" * 500})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Unknown status filter ignored." in html
