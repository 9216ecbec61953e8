"""The product as a platform mounts it: gunicorn with SCRIPT_NAME=/video-tasks, in Chromium.

Sign in, the dashboard and its live refresh, a task page, a download and the admin all work,
and the browser never asks for a URL outside the mount point (a link, form, htmx request or
static file written as a path from the host's root would 404 there).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Page, Response, expect

from tests.gunicorn import gunicorn
from tests.test_mounted import PREFIX, kept_task
from videos.models import Status, VideoTask

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "mounted-owner-password-1"
LIVE_TIMEOUT = 10_000  # three refresh periods
VIDEO = b"\x00\x00\x00\x18ftypmp42 a kept copy"


@pytest.fixture
def site() -> Iterator[str]:
    """The site's origin; the app answers under origin + PREFIX."""
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.mounted_settings",
        "TEST_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SCRIPT_NAME": PREFIX,
    }
    with gunicorn(env, health_path=f"{PREFIX}/healthz") as origin:
        yield origin


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


def test_the_site_works_end_to_end_under_a_prefix(site, page, assert_no_console_errors):
    owner = get_user_model().objects.create_superuser("mounted-owner", password=PASSWORD)
    done = kept_task(owner, "video_kept_mounted", VIDEO, label="Kept under a prefix")
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
