from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from dashboard import health
from videos.models import WorkerHeartbeat


@pytest.mark.django_db
def test_healthz_answers_over_plain_http_for_any_host(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["videos.example.com"]
    response = client.get("/healthz", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "worker": {"last_seen": None, "alive": False},
    }
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_other_pages_are_still_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["videos.example.com"]
    response = client.get("/", HTTP_HOST="videos.example.com")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def test_healthz_says_503_when_the_database_is_down(client, monkeypatch):
    class BrokenCursor:
        def __enter__(self):
            raise OperationalError("connection refused")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(health.connection, "cursor", lambda: BrokenCursor())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "error"


@pytest.mark.django_db
def test_healthz_reports_the_worker(client):
    seen = timezone.now() - timedelta(seconds=5)
    WorkerHeartbeat.objects.create(name="host:1", last_seen_at=seen)
    assert client.get("/healthz").json()["worker"] == {"last_seen": seen.isoformat(), "alive": True}
    WorkerHeartbeat.objects.filter(name="host:1").update(last_seen_at=seen - timedelta(minutes=5))
    assert client.get("/healthz").json()["worker"]["alive"] is False
