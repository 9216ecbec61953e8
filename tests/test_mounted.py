"""The site mounted under a path, as a platform does with gunicorn's SCRIPT_NAME or with
FORCE_SCRIPT_NAME: every URL a page, a fragment or a redirect gives the browser (links, form
actions, htmx URLs, static files, HX-Redirect and Location headers) carries the prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.handlers.wsgi import get_script_name
from django.test.client import ClientHandler
from django.urls import set_script_prefix
from django.utils import timezone

from videos import listing
from videos.models import KeepState, Status, VideoTask

PREFIX = "/video-tasks"
VIDEO = b"\x00\x00\x00\x18ftypmp42"
HX = {"headers": {"HX-Request": "true"}}
# Attributes that hold a URL the browser requests or navigates to.
URL_ATTRIBUTES = {"href", "src", "action", "poster", "formaction", "hx-get", "hx-post", "hx-put", "hx-delete"}
URL_HEADERS = ("Location", "HX-Redirect", "HX-Location")


class MountedHandler(ClientHandler):
    """The test client's handler, with the script prefix set per request as Django's
    WSGIHandler does (the plain test client never sets it)."""

    def __call__(self, environ):
        set_script_prefix(get_script_name(environ))
        try:
            return super().__call__(environ)
        finally:
            set_script_prefix("/")


class URLs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.extend(value for name, value in attrs if name in URL_ATTRIBUTES and value is not None)


def urls_in(response) -> list[str]:
    found = [response[name] for name in URL_HEADERS if response.has_header(name)]
    if response.get("Content-Type", "").startswith("text/html"):
        parser = URLs()
        parser.feed(response.content.decode())
        found.extend(parser.found)
    return found


def unmounted(urls: list[str]) -> list[str]:
    """The URLs that would leave the mount point: absolute paths outside the prefix."""
    return [
        url
        for url in urls
        if not url.startswith(("http://", "https://", "#", "data:", f"{PREFIX}/"))
        # The admin's "View site" is the mount point itself, without a slash.
        and url not in ("", PREFIX)
        and not url.startswith("?")
    ]


class Mounted:
    """A test client whose every request comes in under PREFIX."""

    def __init__(self, client, environ: dict[str, str]) -> None:
        self.client = client
        self.environ = environ
        self.seen: list[tuple[str, str]] = []

    def get(self, path: str, **extra):
        return self._checked(path, self.client.get(path, **self.environ, **extra))

    def post(self, path: str, data: dict | None = None, **extra):
        return self._checked(path, self.client.post(path, data or {}, **self.environ, **extra))

    def _checked(self, path: str, response):
        assert response.status_code < 400 or response.status_code == 404, (path, response.status_code)
        self.seen.extend((path, url) for url in urls_in(response))
        return response

    def assert_all_mounted(self) -> None:
        assert self.seen, "no URL was checked"
        wrong = [(path, url) for path, url in self.seen if url in unmounted([url])]
        assert not wrong, "URLs without the prefix (page, URL):\n" + "\n".join(map(str, wrong))


@pytest.fixture(params=["SCRIPT_NAME", "FORCE_SCRIPT_NAME"])
def mounted(request, client, settings) -> Iterator[Mounted]:
    # The static files storage is built once, usually before the first request; build it
    # here, unmounted, so a storage that keeps its first URL shows up as a failure.
    staticfiles_storage.url("css/app.css")
    client.handler = MountedHandler(enforce_csrf_checks=False)
    if request.param == "FORCE_SCRIPT_NAME":
        settings.FORCE_SCRIPT_NAME = PREFIX
        yield Mounted(client, {})
    else:
        yield Mounted(client, {"SCRIPT_NAME": PREFIX})


def kept_task(owner, task_id: str, video: bytes, **fields) -> VideoTask:
    """A completed task whose video (and a thumbnail) is kept in our storage."""
    task = VideoTask(
        owner=owner,
        task_id=task_id,
        status=Status.COMPLETED,
        progress=100,
        completed_at=timezone.now(),
        keep_state=KeepState.KEPT,
        **fields,
    )
    task.kept_file.save(f"{task_id}.mp4", ContentFile(video), save=False)
    task.kept_thumbnail.save(f"{task_id}.jpg", ContentFile(b"\xff\xd8\xff\xd9"), save=False)
    task.save()
    return task


@pytest.fixture
def tasks(owner) -> dict[str, VideoTask]:
    now = timezone.now()
    made = {
        "pending": VideoTask.objects.create(owner=owner, task_id="video_pending", status=Status.PENDING),
        "processing": VideoTask.objects.create(
            owner=owner, task_id="video_running", status=Status.PROCESSING, progress=40, label="A label"
        ),
        "failed": VideoTask.objects.create(
            owner=owner, task_id="video_failed", status=Status.FAILED, error_message="No."
        ),
        "completed": VideoTask.objects.create(
            owner=owner,
            task_id="video_done",
            status=Status.COMPLETED,
            progress=100,
            url="https://cdn.example.com/video_done.mp4",
            expires_at=now + timedelta(hours=1),
            completed_at=now,
        ),
    }
    made["kept"] = kept_task(owner, "video_kept", VIDEO, label="Kept", remixed_from=made["completed"])
    return made


def test_every_page_fragment_and_redirect_stays_under_the_prefix(mounted, owner, tasks, monkeypatch):
    # Small pages, so the pager's links are drawn too.
    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    site = mounted

    assert site.get("/")["Location"] == f"{PREFIX}/accounts/login/?next={PREFIX}/"
    site.get("/accounts/login/")
    signed = site.post("/accounts/login/", {"username": "owner", "password": "owner-password-1"})
    assert signed["Location"] == f"{PREFIX}/"

    assert b'rel="next"' in site.get("/").content, "no pager drawn: its links would go unchecked"
    site.get("/?status=completed")
    for task in tasks.values():
        site.get(f"/tasks/{task.pk}/")
        site.get(f"/tasks/{task.pk}/", **HX)
        site.get(f"/tasks/{task.pk}/stop/")
    site.get(f"/tasks/{tasks['completed'].pk}/delete-remote/")
    site.get("/tasks/live/?token=stale&ids=1", **HX)
    site.get("/status/", **HX)

    # The forms, answered with htmx (fragments) and without (messages and a redirect);
    # invalid input, so no provider is asked.
    site.post("/videos/new/", {"prompt": ""}, **HX)
    assert site.post("/videos/new/", {"prompt": ""})["Location"] == f"{PREFIX}/w/owner/"
    site.post("/tasks/track/", {"task_ids": "video_new_one"}, **HX)
    assert site.post("/tasks/track/", {"task_ids": "video_other"})["Location"] == f"{PREFIX}/w/owner/"
    pending = tasks["pending"]
    site.post(f"/tasks/{pending.pk}/refresh/", **HX)
    assert site.post(f"/tasks/{pending.pk}/refresh/")["Location"] == f"{PREFIX}/tasks/{pending.pk}/"
    assert site.post(f"/tasks/{pending.pk}/remix/", {"prompt": "again"}, **HX)["HX-Redirect"] == (
        f"{PREFIX}/tasks/{pending.pk}/"
    )
    assert site.post(f"/tasks/{tasks['failed'].pk}/stop/", **HX)["HX-Redirect"] == f"{PREFIX}/w/owner/"
    assert site.post(f"/tasks/{pending.pk}/stop/")["Location"] == f"{PREFIX}/w/owner/"

    kept = tasks["kept"]
    download = site.get(f"/tasks/{kept.pk}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == VIDEO
    assert site.get("/healthz").content == b"ok\n"

    assert site.post("/accounts/logout/")["Location"] == f"{PREFIX}/accounts/login/"
    site.assert_all_mounted()


def test_the_admin_stays_under_the_prefix(mounted, owner, tasks):
    staff = get_user_model().objects.create_superuser("operator", password="operator-password-1")
    mounted.client.force_login(staff)
    mounted.get("/")  # the Admin link in the top bar
    mounted.get("/admin/")
    mounted.get("/admin/videos/videotask/")
    mounted.get("/admin/videos/videotask/?status__exact=failed")
    mounted.get(f"/admin/videos/videotask/{tasks['completed'].pk}/change/")
    changed = mounted.post(
        "/admin/videos/videotask/",
        {"action": "poll_now", "_selected_action": [tasks["pending"].pk]},
    )
    assert changed["Location"].startswith(f"{PREFIX}/admin/videos/videotask/")
    mounted.assert_all_mounted()


def test_the_check_itself_finds_a_path_written_by_hand():
    assert unmounted(["/tasks/1/", f"{PREFIX}/tasks/1/", "//evil.example/", "https://cdn.example.com/x"]) == [
        "/tasks/1/",
        "//evil.example/",
    ]


def test_the_production_storage_prefixes_each_request_even_when_built_before_any():
    storage = storages.create_storage(
        {"BACKEND": "dashboard.storage.ManifestStaticFilesStorage", "OPTIONS": {"base_url": "static/"}}
    )
    assert storage.base_url == "/static/"
    set_script_prefix(f"{PREFIX}/")
    try:
        assert storage.base_url == f"{PREFIX}/static/"
    finally:
        set_script_prefix("/")
