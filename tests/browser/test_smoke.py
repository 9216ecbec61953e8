"""Smoke tests: the site works in a real Chromium, end to end through the live server."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from playwright.sync_api import expect


def test_login_page_renders_both_fields(page, live_url, assert_no_console_errors):
    response = page.goto(f"{live_url}/accounts/login/")
    assert response.status == 200
    expect(page.locator("input[name=username]")).to_be_visible()
    expect(page.locator("input[name=password]")).to_have_attribute("type", "password")
    expect(page.locator("form button[type=submit]")).to_be_visible()
    assert_no_console_errors(page)


def test_wrong_password_shows_the_error(page, live_url, assert_no_console_errors):
    get_user_model().objects.create_user("ada", password="right-password-1")
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "wrong-password-1")
    page.click("form button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    assert page.url.startswith(f"{live_url}/accounts/login/")
    assert_no_console_errors(page)


def test_signing_in_lands_on_the_dashboard_with_the_users_name(login, live_url, assert_no_console_errors):
    get_user_model().objects.create_user("grace", password="grace-password-1")
    page = login("grace", "grace-password-1")
    assert page.url == f"{live_url}/"
    expect(page.locator("header")).to_contain_text("grace")
    assert_no_console_errors(page)


def test_healthz_answers_ok_and_nothing_more(page, live_url):
    # The detail needs HEALTHZ_TOKEN (tests/test_health.py).
    response = page.goto(f"{live_url}/healthz")
    assert response.status == 200
    assert response.text() == "ok\n"


def test_stylesheet_is_served_and_applied(page, live_url, assert_no_console_errors):
    with page.expect_response(lambda r: r.url.endswith("/static/css/app.css")) as stylesheet:
        page.goto(f"{live_url}/accounts/login/")
    assert stylesheet.value.status == 200
    # nosniff is on: a stylesheet with another content type would be silently ignored.
    assert stylesheet.value.header_value("content-type").startswith("text/css")
    # Chromium's default body margin is 8px; app.css sets 0.
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"
    assert_no_console_errors(page)
