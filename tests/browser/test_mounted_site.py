"""The product as a platform mounts it: gunicorn with SCRIPT_NAME=/video-tasks, in Chromium.

Sign in, the dashboard and its live refresh, a task page, a download and the admin all work,
and the browser never asks for a URL outside the mount point (a link, form, htmx request or
static file written as a path from the host's root would 404 there).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone
from playwright.sync_api import Page, Response, expect

from tests.test_poll_command import ROOT, database_url
from tests.test_site_under_hung_provider import free_port, wait_for
from videos.models import KeepState, Status, VideoTask

pytestmark = pytest.mark.django_db(transaction=True)

PREFIX = "/video-tasks"
PASSWORD = "mounted-owner-password-1"
LIVE_TIMEOUT = 10_000  # three refresh periods
VIDEO = b"\x00\x00\x00\x18ftypmp42 a kept copy"


@pytest.fixture
def site() -> Iterator[str]:
    """The site's origin; the app answers under origin + PREFIX."""
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "tests.mounted_settings",
        "TEST_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DATABASE_URL": database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_SSL_REDIRECT": "0",
        "SCRIPT_NAME": PREFIX,
    }
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "dashboard.wsgi:application"),
            *("--bind", f"127.0.0.1:{port}", "--worker-class", "gthread", "--workers", "1"),
            *("--threads", "4", "--timeout", "120", "--log-level", "warning"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    origin = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            return requests.get(f"{origin}{PREFIX}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(up, what="gunicorn to answer /video-tasks/healthz")
        yield origin
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr:
            process.stderr.close()


def watch(page: Page, origin: str) -> list[str]:
    """Problems seen from now on: a request of this site outside the mount point, or an
    answer of 400 and over."""
    problems: list[str] = []

    def on_response(response: Response) -> None:
        url = response.url
        if url.startswith(origin) and not url.startswith(f"{origin}{PREFIX}/"):
            problems.append(f"outside the mount point: {url}")
        if response.status >= 400:
            problems.append(f"{response.status}: {url}")

    page.on("response", on_response)
    return problems


def styled(page: Page) -> bool:
    return page.evaluate(
        "document.styleSheets.length > 0"
        " && Array.from(document.styleSheets).every((sheet) => sheet.cssRules.length > 0)"
    )


def kept_task(owner) -> VideoTask:
    task = VideoTask(
        owner=owner,
        task_id="video_kept_mounted",
        label="Kept under a prefix",
        status=Status.COMPLETED,
        progress=100,
        completed_at=timezone.now(),
        keep_state=KeepState.KEPT,
    )
    task.kept_file.save("mounted.mp4", ContentFile(VIDEO), save=False)
    task.save()
    return task


def test_the_site_works_end_to_end_under_a_prefix(site, page, assert_no_console_errors):
    owner = get_user_model().objects.create_superuser("mounted-owner", password=PASSWORD)
    done = kept_task(owner)
    running = VideoTask.objects.create(
        owner=owner, task_id="video_running_mounted", status=Status.PROCESSING, progress=30
    )
    problems = watch(page, site)
    home = f"{site}{PREFIX}/"

    # Signing in: the dashboard sends an anonymous visitor to the login page and back.
    page.goto(home)
    expect(page).to_have_url(f"{site}{PREFIX}/accounts/login/?next={PREFIX}/")
    page.fill("input[name=username]", "mounted-owner")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    expect(page).to_have_url(home)

    # The dashboard, with its stylesheet and scripts, and its live refresh.
    expect(page.locator("#task-rows tr.task")).to_have_count(2)
    assert page.evaluate("typeof window.htmx") == "object", "htmx did not load"
    assert styled(page), "app.css did not load"
    VideoTask.objects.filter(pk=running.pk).update(
        status=Status.COMPLETED, progress=100, completed_at=timezone.now(), changed_at=timezone.now()
    )
    expect(page.locator(f"#task-{running.pk} .badge")).to_have_text("Completed", timeout=LIVE_TIMEOUT)

    # The task page and its download.
    page.click(f"#task-{done.pk} a >> text=Kept under a prefix")
    expect(page).to_have_url(f"{home}tasks/{done.pk}/")
    with page.expect_download() as download:
        page.click("a.download")
    assert download.value.url == f"{home}tasks/{done.pk}/download/"
    with open(download.value.path(), "rb") as saved:
        assert saved.read() == VIDEO

    # The admin, from the top bar's link.
    page.click("header >> text=Admin")
    expect(page).to_have_url(f"{home}admin/")
    page.locator(f"a[href='{PREFIX}/admin/videos/videotask/']").first.click()
    expect(page.locator("#result_list")).to_contain_text("video_kept_mounted")
    assert styled(page), "the admin's stylesheets did not load"

    # Signing out lands on the login page, still under the prefix.
    page.goto(home)
    page.click("header button >> text=Sign out")
    expect(page).to_have_url(f"{home}accounts/login/")

    assert not problems, "\n".join(problems)
    assert_no_console_errors(page)
