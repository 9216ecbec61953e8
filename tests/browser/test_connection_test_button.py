"""A connection's Test button in a real Chromium: the outcome replaces the connection's row
without a reload (htmx, CSRF header, CSP all working together), and the key is not on the
page before or after."""

from __future__ import annotations

from playwright.sync_api import expect

from teams.models import ProviderConnection
from tests.fake_provider import Reply

KEY = "sk-browser-button-key-5Tg8Hu"


def test_pressing_test_shows_the_outcome_in_the_row(login, live_url, team, provider, settings):
    settings.VIDEO_FETCH_ALLOW_HOSTS = [provider.base_url.split("/")[2]]
    provider.script("GET /videos", Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}}))
    connection = ProviderConnection(workspace=team, name="Gateway", base_url=provider.base_url)
    connection.set_api_key(KEY)
    connection.save()

    page = login("owner", "owner-password-1")
    page.goto(f"{live_url}/w/team/connections/")
    row = page.locator(f"#connection-{connection.pk}")
    expect(row).to_contain_text(f"…{KEY[-4:]}")
    page.evaluate("window.__noReload = 1")

    row.get_by_role("button", name="Test").click()
    outcome = page.locator(f"#connection-{connection.pk} .test-outcome")
    expect(outcome).to_contain_text("The provider refused the key (HTTP 401).")
    expect(outcome).to_contain_text("Incorrect API key provided: [key]")
    assert page.evaluate("window.__noReload") == 1  # swapped in place, not a new page
    assert page.locator("table.connections tbody tr").count() == 1
    assert KEY not in page.content()
    assert len(provider.requests) == 1

    # Pressed again, the fresh row's own button works too.
    provider.script("GET /videos", Reply(200, {"data": [], "has_more": False}))
    page.locator(f"#connection-{connection.pk}").get_by_role("button", name="Test").click()
    expect(outcome).to_contain_text("Reached: this is an OpenAI-compatible video API")
    assert len(provider.requests) == 2
