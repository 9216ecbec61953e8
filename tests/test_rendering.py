"""What pages show from untrusted strings: escaping, links, the player, the CSP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.pages import make_task
from videos.models import Status

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


# Escaping and links


def test_hostile_strings_are_escaped_everywhere(signed_in, owner):
    task = make_task(
        owner,
        HOSTILE[:50],
        label=HOSTILE,
        model=HOSTILE[:100],
        status=Status.FAILED,
        error_message=HOSTILE,
        error_code="<b>code</b>",
        metadata={"note": HOSTILE},
        raw_status=HOSTILE[:64],
    )
    for url in ("/", f"/tasks/{task.pk}/"):
        html = signed_in.get(url).content.decode()
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "<b>code</b>" not in html
        assert "&lt;script&gt;alert" in html


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,hi", "ftp://files.example/v.mp4"])
def test_only_http_links_become_links(signed_in, owner, url):
    task = make_task(owner, status=Status.COMPLETED, progress=100, url=url)
    for page in ("/", f"/tasks/{task.pk}/"):
        html = signed_in.get(page).content.decode()
        assert url not in html.replace("&amp;", "&")
        assert 'href="javascript' not in html
        assert 'src="javascript' not in html
    # The player and the download go through the dashboard, which asks the provider's
    # content endpoint instead of the bad link. Only once the person presses play: a stream
    # through the dashboard holds a web thread (and, proxied, one of the process's few
    # download slots) for as long as the browser keeps it open.
    detail = signed_in.get(f"/tasks/{task.pk}/").content.decode()
    assert (
        f'<video class="player" controls preload="none" src="/tasks/{task.pk}/download/?inline=1">' in detail
    )


def test_a_completed_task_shows_its_download_and_player(signed_in, owner):
    expires = timezone.now() + timedelta(hours=2)
    task = make_task(
        owner, status=Status.COMPLETED, progress=100, url="https://cdn.example/v.mp4", expires_at=expires
    )
    dashboard = signed_in.get("/").content.decode()
    assert f'href="/tasks/{task.pk}/download/" download' in dashboard  # through us: the key stays here
    assert "in 1 h 59 min" in dashboard or "in 2 h" in dashboard
    detail = signed_in.get(f"/tasks/{task.pk}/").content.decode()
    assert '<video class="player" controls preload="metadata" src="https://cdn.example/v.mp4">' in detail


def test_an_expired_link_is_not_offered(signed_in, owner):
    task = make_task(
        owner,
        status=Status.COMPLETED,
        url="https://cdn.example/old.mp4",
        expires_at=timezone.now() - timedelta(minutes=5),
    )
    for page in ("/", f"/tasks/{task.pk}/"):
        html = signed_in.get(page).content.decode()
        assert "https://cdn.example/old.mp4" not in html
        assert "expired" in html
