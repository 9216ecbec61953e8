"""Sign-in throttling through the real login pages, as a client behind the PaaS router
sends it: the router connects from its own address and appends the client's to
X-Forwarded-For (TRUSTED_PROXY_COUNT=1, the production default)."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.test import RequestFactory
from django.utils import timezone

from dashboard.client_ip import client_ip

ROUTER = "10.0.0.2"
HOME = "203.0.113.5"
ELSEWHERE = "198.51.100.9"
LIMIT = settings.AXES_FAILURE_LIMIT


def sign_in(client, username, password, *, address=HOME, forwarded=None, path="/accounts/login/"):
    return client.post(
        path,
        {"username": username, "password": password},
        REMOTE_ADDR=ROUTER,
        HTTP_X_FORWARDED_FOR=forwarded or address,
    )


def fail_until_locked(client, username="owner", **kwargs):
    for _ in range(LIMIT - 1):
        response = sign_in(client, username, "wrong-password", **kwargs)
        assert response.status_code == 200
        assert b"didn't match" in response.content or b"enter the correct username" in response.content
    response = sign_in(client, username, "wrong-password", **kwargs)
    assert response.status_code == 429
    return response


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("operator", password="operator-password-1", is_staff=True)


def test_wrong_passwords_then_the_right_one_is_refused_from_that_address(client, owner):
    fail_until_locked(client)
    response = sign_in(client, "owner", "owner-password-1")
    assert response.status_code == 429
    assert not signed_in(client)


def test_the_locked_page_is_a_429_that_says_when_to_try_again(client, owner):
    response = fail_until_locked(client)
    page = response.content.decode()
    assert response["Content-Type"].startswith("text/html")
    assert "Too many sign-in attempts" in page
    assert "is paused for 15 minutes" in page
    assert response["Retry-After"] == str(15 * 60)
    assert '<link rel="stylesheet"' in page  # the site's page, not a bare text


def test_the_lockout_does_not_tell_whether_the_account_exists(client, owner):
    real = fail_until_locked(client, "owner")
    made_up = fail_until_locked(client, "nobody-by-this-name")
    assert real.status_code == made_up.status_code == 429
    assert real["Retry-After"] == made_up["Retry-After"]
    strip = lambda page: page.decode().split("<main")[1]  # noqa: E731  (past the per-request CSRF token)
    assert strip(real.content) == strip(made_up.content)


def test_the_same_account_signs_in_from_another_address(client, owner):
    fail_until_locked(client)
    response = sign_in(client, "owner", "owner-password-1", address=ELSEWHERE)
    assert response.status_code == 302
    assert signed_in(client)


def test_other_accounts_sign_in_from_the_locked_address(client, owner, teammate):
    fail_until_locked(client, "owner")
    assert sign_in(client, "teammate", "teammate-password-1").status_code == 302


def test_the_lockout_ends_by_itself(client, owner):
    fail_until_locked(client)
    # The cool-off has passed: move the recorded failures back rather than wait.
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    assert AccessAttempt.objects.update(attempt_time=past) == 1
    response = sign_in(client, "owner", "owner-password-1")
    assert response.status_code == 302
    assert signed_in(client)


def test_a_correct_sign_in_clears_the_earlier_failures(client, owner):
    for _ in range(LIMIT - 1):
        sign_in(client, "owner", "wrong-password")
    assert sign_in(client, "owner", "owner-password-1").status_code == 302
    client.post("/accounts/logout/")
    for _ in range(LIMIT - 1):
        assert sign_in(client, "owner", "wrong-password").status_code == 200
    assert sign_in(client, "owner", "owner-password-1").status_code == 302


def test_admin_login_is_throttled_too(client, staff):
    fail_until_locked(client, "operator", path="/admin/login/")
    response = sign_in(client, "operator", "operator-password-1", path="/admin/login/")
    assert response.status_code == 429
    assert client.get("/admin/").status_code == 302
    # One count for the account from that address, whichever page the guesses came through.
    assert sign_in(client, "operator", "operator-password-1").status_code == 429
    assert (
        sign_in(
            client, "operator", "operator-password-1", address=ELSEWHERE, path="/admin/login/"
        ).status_code
        == 302
    )


def test_a_spoofed_left_most_forwarded_for_is_not_a_fresh_address(client, owner):
    fail_until_locked(client)
    # The attacker writes any address first; the router still appends the real one.
    for spoofed in (ELSEWHERE, "127.0.0.1", "not-an-address"):
        response = sign_in(client, "owner", "owner-password-1", forwarded=f"{spoofed}, {HOME}")
        assert response.status_code == 429


def test_a_locked_client_costs_no_password_hash(client, owner):
    fail_until_locked(client)
    with mock.patch.object(ModelBackend, "authenticate", autospec=True, return_value=None) as check:
        for password in ("wrong-password", "another-guess", "owner-password-1"):
            assert sign_in(client, "owner", password).status_code == 429
    assert check.call_count == 0
    # Refused attempts are not counted: the lockout still ends a cool-off after it began.
    assert AccessAttempt.objects.get().failures_since_start == LIMIT


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "198.51.100.9", ROUTER),  # no router: the header is the client's own claim
        (1, "", ROUTER),  # no header where one was expected: the connecting address
        (1, "198.51.100.9", "198.51.100.9"),
        (1, "192.0.2.1, 198.51.100.9", "198.51.100.9"),
        (2, "192.0.2.1, 198.51.100.9, 10.9.9.9", "198.51.100.9"),  # a CDN, then the router
        (2, "198.51.100.9", ROUTER),  # fewer hops than proxies: nothing in it is trusted
        (1, "192.0.2.1, garbage", ROUTER),
        (1, " 2001:db8::1 ", "2001:db8::1"),
    ],
)
def test_client_address_is_read_from_the_right(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR=ROUTER, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected
