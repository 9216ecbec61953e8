from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from dashboard import health
from videos.models import WorkerHeartbeat

TOKEN = "healthz-secret-for-tests"
FAILING_KEEP = {
    "keep": {
        "job": "keep",
        "label": "Copying finished videos into storage",
        "failures": 4,
        "since": "2026-01-01T00:00:00+00:00",
        "error": "OSError: [Errno 28] No space left on device",
    }
}


@pytest.fixture
def token(settings):
    settings.HEALTHZ_TOKEN = TOKEN
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture
def production_router(settings):
    """HTTPS enforced and one host allowed, as on a PaaS."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["videos.example.com"]


@pytest.mark.django_db
@pytest.mark.usefixtures("production_router")
def test_healthz_answers_over_plain_http_for_any_host(client):
    response = client.get("/healthz", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
@pytest.mark.usefixtures("production_router")
def test_other_pages_are_still_redirected_to_https(client):
    response = client.get("/", HTTP_HOST="videos.example.com")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


@pytest.fixture
def database_down(monkeypatch):
    class BrokenCursor:
        def __enter__(self):
            raise OperationalError("connection refused")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(health.connection, "cursor", lambda: BrokenCursor())


def test_healthz_says_503_when_the_database_is_down(client, database_down):
    response = client.get("/healthz")
    assert (response.status_code, response.content) == (503, b"not ok\n")


def test_with_the_token_a_database_outage_is_detailed(client, database_down, token):
    response = client.get("/healthz", **token)
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "error"}


@pytest.mark.django_db
def test_the_world_learns_nothing_about_the_worker(client, settings):
    settings.HEALTHZ_TOKEN = TOKEN
    WorkerHeartbeat.objects.create(name="host:1", failing_jobs=FAILING_KEEP)
    for headers in (
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong-token"},
        {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"},
        {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}x"},
    ):
        response = client.get("/healthz", **headers)
        assert (response.status_code, response.content) == (200, b"ok\n"), headers
    assert client.get("/healthz", {"token": "wrong"}).content == b"ok\n"


@pytest.mark.django_db
def test_without_a_configured_token_no_one_gets_the_detail(client, settings):
    settings.HEALTHZ_TOKEN = ""
    assert client.get("/healthz", HTTP_AUTHORIZATION="Bearer ").content == b"ok\n"
    assert client.get("/healthz", {"token": ""}).content == b"ok\n"


@pytest.mark.django_db
def test_with_the_token_healthz_details_the_database_and_the_worker(client, token):
    assert client.get("/healthz", **token).json() == {
        "status": "ok",
        "database": "ok",
        "worker": {"last_seen": None, "alive": False, "failing_jobs": []},
    }
    seen = timezone.now() - timedelta(seconds=5)
    WorkerHeartbeat.objects.create(name="host:1", last_seen_at=seen)
    worker = client.get("/healthz", **token).json()["worker"]
    assert worker == {"last_seen": seen.isoformat(), "alive": True, "failing_jobs": []}
    WorkerHeartbeat.objects.filter(name="host:1").update(last_seen_at=seen - timedelta(minutes=5))
    assert client.get("/healthz", **token).json()["worker"]["alive"] is False


@pytest.mark.django_db
def test_the_token_also_works_in_the_query_string(client, settings):
    settings.HEALTHZ_TOKEN = TOKEN
    response = client.get("/healthz", {"token": TOKEN})
    assert response.json()["database"] == "ok"


@pytest.mark.django_db
def test_with_the_token_healthz_lists_the_jobs_that_keep_failing(client, token):
    WorkerHeartbeat.objects.create(name="host:1", failing_jobs=FAILING_KEEP)
    # A stopped worker's jobs are not running at all: not reported as failing.
    WorkerHeartbeat.objects.create(name="host:2", failing_jobs=FAILING_KEEP, stopped_at=timezone.now())
    response = client.get("/healthz", **token)
    assert response.status_code == 200  # the web process is fine; a monitor alerts on the list
    assert response.json()["worker"]["failing_jobs"] == [{**FAILING_KEEP["keep"], "worker": "host:1"}]


@pytest.mark.django_db
def test_the_banner_names_a_failing_job_but_not_its_error(client, owner):
    WorkerHeartbeat.objects.create(name="host:1", failing_jobs=FAILING_KEEP)
    client.force_login(owner)
    html = client.get("/status/").content.decode()
    assert "Part of the worker keeps failing" in html
    assert "Copying finished videos into storage (<code>keep</code>), 4 failures in a row" in html
    assert "No space left" not in html
    assert "Worker last seen" in html
