"""The dashboard's pages and fragments through Django's test client: scoping, CSRF,
escaping, the live refresh's cost, tracking, the task page and its actions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from videos.models import ProviderState, Status, TaskEvent, VideoTask, WorkerHeartbeat, key_fingerprint

HX = {"HX-Request": "true"}
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def make_task(owner, task_id="video_1", **fields) -> VideoTask:
    return VideoTask.objects.create(owner=owner, task_id=task_id, **fields)


def live_params(html: str) -> dict[str, str]:
    """The token and ids the page would send with its next refresh."""
    match = re.search(r'id="live"[^>]*hx-vals="([^"]*)"', html)
    assert match, "the page does not poll"
    values = match.group(1).replace("&quot;", '"')
    token = re.search(r'"token": "([^"]*)"', values).group(1)
    ids = re.search(r'"ids": "([^"]*)"', values).group(1)
    return {"token": token, "ids": ids}


# Signing in, and what needs it


@pytest.mark.parametrize("url", ["/", "/tasks/1/", "/tasks/live/", "/status/", "/tasks/1/stop/"])
def test_pages_require_a_signed_in_user(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_form_uses_username_and_password(client, owner):
    page = client.get("/accounts/login/").content.decode()
    assert 'name="username"' in page and 'name="password"' in page
    response = client.post("/accounts/login/", {"username": "owner", "password": "owner-password-1"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_sign_out_is_a_post(signed_in):
    assert signed_in.post("/accounts/logout/").status_code == 302
    assert signed_in.get("/").status_code == 302


# Scoping: another user's task is a 404 everywhere


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("get", "/tasks/{pk}/", {}),
        ("get", "/tasks/{pk}/", HX),
        ("post", "/tasks/{pk}/refresh/", {}),
        ("post", "/tasks/{pk}/refresh/", HX),
        ("get", "/tasks/{pk}/stop/", {}),
        ("post", "/tasks/{pk}/stop/", HX),
    ],
)
def test_another_users_task_is_a_404(client, owner, outsider, method, url, headers):
    task = make_task(owner, status=Status.PROCESSING)
    client.force_login(outsider)
    response = getattr(client, method)(url.format(pk=task.pk), headers=headers)
    assert response.status_code == 404
    task.refresh_from_db()
    assert task.next_poll_at is None  # the refresh did nothing
    assert VideoTask.objects.filter(pk=task.pk).exists()


def test_the_dashboard_and_its_refresh_show_only_my_tasks(client, owner, outsider):
    mine = make_task(owner, "mine", label="my video")
    theirs = make_task(outsider, "theirs", label="their video", status=Status.PROCESSING)
    client.force_login(owner)
    page = client.get("/").content.decode()
    assert "my video" in page and "their video" not in page
    # Asking the refresh for their row by ID leaks nothing either.
    response = client.get("/tasks/live/", {"token": "stale", "ids": f"{mine.pk},{theirs.pk}"}, headers=HX)
    assert "their video" not in response.content.decode()
    assert "theirs" not in response.content.decode()


# CSRF


def test_posts_need_the_csrf_token(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post("/tasks/track/", {"task_ids": "video_1"}).status_code == 403
    assert not VideoTask.objects.exists()
    page = client.get("/").content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    # htmx sends the token from the body's hx-headers.
    response = client.post("/tasks/track/", {"task_ids": "video_1"}, headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 200
    assert VideoTask.objects.filter(owner=owner, task_id="video_1").exists()


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


# Tracking tasks


def test_tracking_many_ids_reports_each_line(signed_in, owner):
    make_task(owner, "video_known")
    text = "\n".join(
        [
            "video_a  Sunset take 2",
            "video_known",
            "..",
            "bad\x00id",
            "labelled  with a \x00 NUL",
            "video/with+slash=",
            "video_a duplicate line",
            "",
        ]
    )
    response = signed_in.post("/tasks/track/", {"task_ids": text}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert set(VideoTask.objects.filter(owner=owner).values_list("task_id", flat=True)) == {
        "labelled",
        "video_known",
        "video_a",
        "video/with+slash=",
    }
    assert VideoTask.objects.get(task_id="video_a").label == "Sunset take 2"
    assert "Now tracking 3 tasks" in html
    assert VideoTask.objects.get(task_id="labelled").label == "with a  NUL"
    assert "Already tracked: <code>video_known</code>" in html
    assert "Line 3" in html and "only of dots" in html
    assert "Line 4" in html
    # The list is redrawn at once, out of band, and the page starts polling.
    assert 'id="task-rows" hx-swap-oob="true"' in html
    assert 'id="live" hx-swap-oob="true" data-live' in html
    new = VideoTask.objects.get(task_id="video_a")
    assert new.next_poll_at is None  # due at once: polled within seconds
    assert new.events.get().kind == TaskEvent.Kind.TRACKED


def test_tracking_nothing_valid_says_why(signed_in):
    response = signed_in.post("/tasks/track/", {"task_ids": "..\n.\n"}, headers=HX)
    html = response.content.decode()
    assert "No task ID could be tracked." in html
    assert not VideoTask.objects.exists()


def test_tracking_without_htmx_redirects_with_messages(signed_in):
    response = signed_in.post("/tasks/track/", {"task_ids": "video_z"}, follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert "Now tracking 1 task(s)." in response.content.decode()


# The live refresh


def test_an_unchanged_refresh_is_empty_and_cheap(signed_in, owner, django_assert_num_queries):
    for i in range(3):
        make_task(owner, f"few{i}", status=Status.PROCESSING)
    params = live_params(signed_in.get("/").content.decode())
    # Session, user, and one aggregate: no template, no rows.
    with django_assert_num_queries(3):
        response = signed_in.get("/tasks/live/", params, headers=HX)
    assert response.status_code == 204
    assert response.content == b""

    VideoTask.objects.bulk_create(
        [VideoTask(owner=owner, task_id=f"many{i}", status=Status.PROCESSING) for i in range(500)]
    )
    params = live_params(signed_in.get("/").content.decode())
    with django_assert_num_queries(3):
        response = signed_in.get("/tasks/live/", params, headers=HX)
    assert response.status_code == 204


def test_a_changed_task_comes_back_as_its_row_alone(signed_in, owner, django_assert_max_num_queries):
    quiet = make_task(owner, "quiet", status=Status.PROCESSING, progress=10)
    busy = make_task(owner, "busy", status=Status.PROCESSING, progress=10)
    params = live_params(signed_in.get("/").content.decode())
    VideoTask.objects.filter(pk=busy.pk).update(progress=60, changed_at=timezone.now())
    with django_assert_max_num_queries(6):
        response = signed_in.get("/tasks/live/", params, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="task-{busy.pk}"' in html and "60%" in html
    assert f'id="task-{quiet.pk}"' not in html
    assert 'id="counts" aria-label="Tasks by status" hx-swap-oob="true"' in html
    assert 'id="live" hx-swap-oob="true" data-live' in html


def test_polling_stops_when_every_shown_task_has_finished(signed_in, owner):
    task = make_task(owner, "ending", status=Status.PROCESSING, progress=90)
    params = live_params(signed_in.get("/").content.decode())
    VideoTask.objects.filter(pk=task.pk).update(
        status=Status.COMPLETED, progress=100, url="https://cdn.example/e.mp4", changed_at=timezone.now()
    )
    response = signed_in.get("/tasks/live/", params, headers=HX)
    html = response.content.decode()
    assert response.status_code == 286
    assert f'href="/tasks/{task.pk}/download/" download' in html
    assert re.search(r'<div id="live" hx-swap-oob="true"></div>', html)
    # And a page of finished tasks does not poll at all.
    assert "data-live" not in signed_in.get("/").content.decode()


def test_a_task_added_elsewhere_redraws_the_list(signed_in, owner):
    make_task(owner, "first", status=Status.PROCESSING)
    params = live_params(signed_in.get("/").content.decode())
    make_task(owner, "added-in-another-tab", status=Status.PENDING)
    html = signed_in.get("/tasks/live/", params, headers=HX).content.decode()
    assert 'id="task-rows" hx-swap-oob="true"' in html
    assert "added-in-another-tab" in html


def test_the_dashboard_costs_the_same_with_many_tasks(signed_in, owner, django_assert_num_queries):
    make_task(owner, "one", status=Status.PROCESSING)
    # session, user, counts, page, fingerprint, open submissions, kept storage, provider
    # state, heartbeat
    with django_assert_num_queries(9):
        signed_in.get("/")
    VideoTask.objects.bulk_create(
        [VideoTask(owner=owner, task_id=f"bulk{i}", status=Status.PROCESSING) for i in range(300)]
    )
    with django_assert_num_queries(9):
        response = signed_in.get("/")
    assert response.content.decode().count('class="task status-') == 50


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


# The task page


def test_the_task_page_shows_fields_timeline_and_durations(signed_in, owner):
    start = timezone.now() - timedelta(minutes=5)
    task = make_task(
        owner,
        "detail",
        label="Detail",
        status=Status.COMPLETED,
        progress=100,
        model="sora-2",
        size="1280x720",
        seconds="8",
        metadata={"prompt": "a cat", "nested": {"k": 1}},
        url="https://cdn.example/d.mp4",
    )
    for offset, kind, prev, status in [
        (0, TaskEvent.Kind.TRACKED, "", "pending"),
        (30, TaskEvent.Kind.STATUS, "pending", "processing"),
        (150, TaskEvent.Kind.STATUS, "processing", "completed"),
    ]:
        TaskEvent.objects.create(
            task=task, at=start + timedelta(seconds=offset), kind=kind, previous_status=prev, status=status
        )
    html = signed_in.get(f"/tasks/{task.pk}/").content.decode()
    assert "Queued 30 s · processing 2 min · total 2 min" in " ".join(html.split())
    assert "pending → processing" in html
    assert "&quot;prompt&quot;: &quot;a cat&quot;" in html
    assert "1280x720" in html and "8 s" in html and "sora-2" in html
    # A finished task offers no "Refresh now" and does not poll.
    assert "Refresh now" not in html
    assert "data-live" not in html


def test_the_task_page_refresh_is_empty_when_nothing_changed(signed_in, owner, django_assert_num_queries):
    task = make_task(owner, "watch", status=Status.PROCESSING, progress=5)
    html = signed_in.get(f"/tasks/{task.pk}/").content.decode()
    token = re.search(r'"token": "([^"]+)"', html).group(1)
    with django_assert_num_queries(3):
        response = signed_in.get(f"/tasks/{task.pk}/", {"token": token}, headers=HX)
    assert response.status_code == 204
    # A poll (even one that changed nothing visible) updates "last checked".
    VideoTask.objects.filter(pk=task.pk).update(last_polled_at=timezone.now())
    response = signed_in.get(f"/tasks/{task.pk}/", {"token": token}, headers=HX)
    assert response.status_code == 200
    assert response["Vary"] and "HX-Request" in response["Vary"]
    VideoTask.objects.filter(pk=task.pk).update(status=Status.FAILED, changed_at=timezone.now())
    response = signed_in.get(f"/tasks/{task.pk}/", {"token": token}, headers=HX)
    assert response.status_code == 286


def test_refresh_now_makes_the_task_due(signed_in, owner):
    task = make_task(
        owner, "soon", status=Status.PROCESSING, next_poll_at=timezone.now() + timedelta(minutes=5)
    )
    response = signed_in.post(f"/tasks/{task.pk}/refresh/", headers=HX)
    assert "Asked the worker to check this task now." in response.content.decode()
    assert VideoTask.objects.due().filter(pk=task.pk).exists()


def test_refresh_now_leaves_a_finished_task_alone(signed_in, owner):
    task = make_task(owner, "over", status=Status.COMPLETED)
    response = signed_in.post(f"/tasks/{task.pk}/refresh/", follow=True)
    assert "will not be asked again" in response.content.decode()
    assert not VideoTask.objects.due().filter(pk=task.pk).exists()


def test_stop_tracking_confirms_then_removes(signed_in, owner):
    task = make_task(owner, "bye", label="Goodbye")
    confirm = signed_in.get(f"/tasks/{task.pk}/stop/").content.decode()
    assert "Stop tracking?" in confirm and 'method="post"' in confirm
    assert VideoTask.objects.filter(pk=task.pk).exists()
    response = signed_in.post(f"/tasks/{task.pk}/stop/", headers=HX)
    assert response["HX-Redirect"] == "/"
    assert not VideoTask.objects.filter(pk=task.pk).exists()
    assert signed_in.get(f"/tasks/{task.pk}/").status_code == 404


# The worker banner


def test_no_worker_yet_is_a_clear_banner(signed_in):
    html = signed_in.get("/status/").content.decode()
    assert "No worker has polled yet" in html


def test_a_silent_worker_is_flagged_after_a_minute(signed_in):
    WorkerHeartbeat.objects.create(name="w:1", last_seen_at=timezone.now() - timedelta(minutes=3))
    html = signed_in.get("/status/").content.decode()
    assert "The worker has not polled since" in html and "3 min ago" in html
    WorkerHeartbeat.objects.create(name="w:2", last_seen_at=timezone.now() - timedelta(seconds=10))
    html = signed_in.get("/status/").content.decode()
    assert "Worker last seen" in html and "not polled" not in html


def test_a_refused_key_is_shown_on_the_dashboard(signed_in, settings):
    settings.VIDEO_API_BASE_URL = "https://gw.example/v1"
    settings.VIDEO_API_KEY = "sk-dashboard-secret"
    state = ProviderState.objects.create(base_url="https://gw.example/v1")
    state.block("The provider refused the API key (HTTP 401).", key_fingerprint("sk-dashboard-secret"))
    html = signed_in.get("/").content.decode()
    assert "Polling is stopped:" in html and "refused the API key" in html
    assert "sk-dashboard-secret" not in html


def test_pages_carry_a_strict_content_security_policy(signed_in):
    policy = signed_in.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
