"""The banner about the worker and the provider, and the pages' CSP."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from videos.models import ProviderState, WorkerHeartbeat, key_fingerprint

# The worker banner


def test_no_worker_yet_is_a_clear_banner(signed_in):
    html = signed_in.get("/status/").content.decode()
    assert "No worker is checking tasks yet" in html


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
