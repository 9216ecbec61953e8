"""The site as deployed (gunicorn, threads) stays up while the provider hangs downloads.

The provider sends a status line, then one header byte at a time and never finishes. Eight
people start downloads at once. Before the fix every gunicorn thread waited on the provider
and the sign-in page timed out; now at most VIDEO_DOWNLOAD_CONCURRENCY downloads wait (the
rest get 503 at once), those end at the download deadline, and pages keep answering.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
import requests
from django.contrib.auth import get_user_model

from tests.fake_provider import Reply
from tests.gunicorn import gunicorn, wait_for
from videos.models import Status, VideoTask

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "site-owner-password-1"
DEADLINE = 4  # VIDEO_DOWNLOAD_DEADLINE for the server under test


@pytest.fixture
def site(provider):
    with gunicorn(
        {
            "VIDEO_API_BASE_URL": provider.base_url,
            "VIDEO_API_KEY": "sk-site-test-key",
            "VIDEO_DOWNLOAD_CONCURRENCY": "2",
            "VIDEO_DOWNLOAD_DEADLINE": str(DEADLINE),
        }
    ) as origin:
        yield origin


def signed_in_session(base: str, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=5)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302, answer.text[:500]
    return session


def test_pages_answer_while_every_download_hangs_at_the_provider(provider, site):
    owner = get_user_model().objects.create_user("site-owner", password=PASSWORD)
    tasks = [
        VideoTask.objects.create(
            owner=owner, task_id=f"video_hung_{n}", status=Status.COMPLETED, progress=100
        )
        for n in range(8)
    ]
    for task in tasks:
        provider.script(
            f"GET /videos/{task.task_id}/content", Reply(200, trickle_headers=0.2, trickle_for=30)
        )
    session = signed_in_session(site, "site-owner")

    answers: dict[int, tuple[int, float, str]] = {}

    def download(task: VideoTask) -> None:
        started = time.monotonic()
        response = session.get(f"{site}/tasks/{task.pk}/download/", timeout=60)
        answers[task.pk] = (
            response.status_code,
            time.monotonic() - started,
            response.headers.get("Retry-After", ""),
        )

    threads = [threading.Thread(target=download, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(provider.requests) >= 2, what="two downloads to reach the provider")

    # While the provider holds those downloads, the site answers as usual.
    started = time.monotonic()
    login_page = requests.get(f"{site}/accounts/login/", timeout=10)
    answered_in = time.monotonic() - started
    assert login_page.status_code == 200
    assert answered_in < 1.0, f"the sign-in page took {answered_in:.2f} s"
    assert session.get(f"{site}/", timeout=10).status_code == 200

    for thread in threads:
        thread.join(60)
    statuses = sorted(status for status, _, _ in answers.values())
    # Two waited on the provider until the deadline and failed cleanly; six were turned
    # away at once with a time to come back.
    assert statuses == [502, 502, 503, 503, 503, 503, 503, 503]
    assert all(retry.isdigit() for status, _, retry in answers.values() if status == 503)
    assert all(took < DEADLINE + 3 for status, took, _ in answers.values() if status == 502)
    assert len(provider.requests) == 2, "the provider was asked beyond the bound"
