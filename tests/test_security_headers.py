"""Headers every answer carries: the security headers of pages on static files and on the
400 for a bad Host too, and no caching of what a signed-in person sees."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import Client, RequestFactory

from dashboard.middleware import PrivateCacheMiddleware
from videos.models import VideoTask

SECURITY_HEADERS = (
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "X-Frame-Options",
    "Content-Security-Policy",
)
STATIC = "/static/css/app.css"
HX = {"HX-Request": "true"}


@pytest.fixture
def page_headers(db, settings):
    # Static files straight from the source folders: tests run without collectstatic.
    settings.WHITENOISE_USE_FINDERS = True
    page = Client().get("/accounts/login/", secure=True)
    assert page.status_code == 200
    assert page["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in page["Content-Security-Policy"]
    assert "max-age=" in page["Strict-Transport-Security"]
    return page


def assert_same_security_headers(response, page, *, https: bool) -> None:
    for name in SECURITY_HEADERS:
        assert response.get(name) == page[name], name
    if https:
        assert response.get("Strict-Transport-Security") == page["Strict-Transport-Security"]
    else:
        assert "Strict-Transport-Security" not in response  # only ever sent over https


@pytest.mark.parametrize("https", [True, False])
def test_static_files_carry_the_page_headers(client, page_headers, https):
    response = client.get(STATIC, secure=https)
    response.close()  # the file WhiteNoise opened
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert_same_security_headers(response, page_headers, https=https)


@pytest.mark.parametrize("https", [True, False])
def test_the_health_probe_carries_the_page_headers(client, page_headers, https):
    # Answered before host validation and the HTTPS redirect, but not before these headers.
    response = client.get("/healthz", secure=https, HTTP_HOST="10.0.0.7:8080")
    assert response.status_code == 200
    assert_same_security_headers(response, page_headers, https=https)


@pytest.mark.parametrize("https", [True, False])
def test_the_bad_host_answer_carries_the_page_headers(client, page_headers, https):
    response = client.get("/", HTTP_HOST="evil.example", secure=https)
    assert response.status_code == 400
    assert_same_security_headers(response, page_headers, https=https)


def test_the_bad_host_answer_before_the_https_redirect_too(client, page_headers, settings):
    # Production redirects plain HTTP to HTTPS, and that redirect is where the host is
    # checked first: its 400 comes from inside SecurityMiddleware.
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert_same_security_headers(response, page_headers, https=False)
    assert client.get("/accounts/login/").status_code == 301


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/", {}),
        ("/tasks/live/", HX),  # the dashboard's live refresh
        ("/status/", HX),
        ("/accounts/password_change/", {}),
    ],
)
def test_signed_in_answers_are_not_stored(signed_in, url, headers):
    response = signed_in.get(url, headers=headers)
    assert response.status_code in (200, 204, 286)
    assert response["Cache-Control"] == "private, no-store"


def test_the_task_page_and_its_fragment_are_not_stored(signed_in, owner):
    task = VideoTask.objects.create(owner=owner, task_id="video_1")
    for headers in ({}, HX, HX):  # the page, a changed fragment, an unchanged one (204)
        response = signed_in.get(f"/tasks/{task.pk}/", headers=headers)
        assert response["Cache-Control"] == "private, no-store"


def test_a_redirect_after_signing_in_is_not_stored(client, owner):
    response = client.post("/accounts/login/", {"username": "owner", "password": "owner-password-1"})
    assert response.status_code == 302
    # The login view's own never_cache: stronger, and kept.
    assert {"private", "no-store"} <= {token.strip() for token in response["Cache-Control"].split(",")}


def test_a_view_that_chose_its_caching_keeps_it(owner):
    request = RequestFactory().get("/")
    request.user = owner
    kept = PrivateCacheMiddleware(
        lambda request: HttpResponse(headers={"Cache-Control": "private, max-age=60"})
    )
    assert kept(request)["Cache-Control"] == "private, max-age=60"
    request.user = AnonymousUser()
    assert "Cache-Control" not in PrivateCacheMiddleware(lambda request: HttpResponse())(request)
