"""axe-core (vendored in tests/browser/vendor, never fetched) on the main pages, signed in
and out: no violation of serious or critical impact. Also: no text under 12 px, and the
skip link and the polite live region are there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from teams.models import ProviderConnection
from tests.browser.conftest import DEFAULT_TIMEOUT_MS
from tests.browser.test_screenshot import build_dashboard
from videos.models import Status, TaskEvent, VideoTask

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SERIOUS = ("serious", "critical")


@pytest.fixture
def axe_page(browser: Browser) -> Iterator[Page]:
    """A page whose context ignores the Content-Security-Policy: axe is injected as an inline
    script, which the site's policy rightly forbids. Only the test's own script is let in."""
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    yield context.new_page()
    context.close()


def sign_in(page: Page, live_url: str) -> None:
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=username]", "owner")
    page.fill("input[name=password]", "owner-password-1")
    page.click("form button[type=submit]")
    page.wait_for_url(f"{live_url}/")


def serious_violations(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    found = []
    for violation in result["violations"]:
        if violation["impact"] in SERIOUS:
            targets = [" ".join(map(str, node["target"])) for node in violation["nodes"][:5]]
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return found


def small_text(page: Page) -> list[str]:
    """Elements with their own visible text set under 12 px."""
    return page.evaluate(
        """() => {
          const small = [];
          const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
          while (walker.nextNode()) {
            const node = walker.currentNode;
            const el = node.parentElement;
            if (!node.textContent.trim() || !el || !el.getClientRects().length) continue;
            const unseen = '.visually-hidden, [hidden], dialog:not([open]), '
              + 'details:not([open]) > :not(summary)';
            if (el.closest(unseen)) continue;
            const size = parseFloat(getComputedStyle(el).fontSize);
            const text = node.textContent.trim().slice(0, 30);
            if (size < 12) small.push(`${el.tagName.toLowerCase()}.${el.className} "${text}" ${size}px`);
          }
          return small;
        }"""
    )


def check(page: Page) -> None:
    assert serious_violations(page) == []
    assert small_text(page) == []


def test_the_board_with_tasks(axe_page, live_url, owner):
    build_dashboard(owner)
    sign_in(axe_page, live_url)
    expect(axe_page.locator("#task-rows tr.task")).to_have_count(8)
    check(axe_page)
    # The skip link is the first thing a keyboard reaches and leads to the task list.
    axe_page.keyboard.press("Tab")
    expect(axe_page.locator(".skip-link")).to_be_focused()
    expect(axe_page.locator(".skip-link")).to_have_attribute("href", "#task-list")
    axe_page.keyboard.press("Enter")
    expect(axe_page.locator("#task-list")).to_be_focused()
    expect(axe_page.locator("#live-announcer")).to_have_attribute("aria-live", "polite")
    # Comfortable rows too.
    axe_page.get_by_role("button", name="Comfortable rows").click()
    expect(axe_page.locator("table.density-comfortable")).to_be_visible()
    check(axe_page)


def test_the_board_in_dark_mode(axe_page, live_url, owner):
    build_dashboard(owner)
    axe_page.emulate_media(color_scheme="dark")
    sign_in(axe_page, live_url)
    expect(axe_page.locator("#task-rows tr.task")).to_have_count(8)
    check(axe_page)


def test_a_failed_task_page_and_a_finished_one(axe_page, live_url, owner):
    failed = VideoTask.objects.create(
        owner=owner,
        task_id="video_axe_failed",
        label="Logo sting",
        status=Status.FAILED,
        progress=35,
        error_code="moderation_blocked",
        error_message="Your request was blocked by our moderation system.",
    )
    TaskEvent.objects.create(task=failed, kind=TaskEvent.Kind.TRACKED, status=Status.PENDING)
    done = VideoTask.objects.create(
        owner=owner,
        task_id="video_axe_done",
        status=Status.COMPLETED,
        progress=100,
        url="https://cdn.example/v.mp4",
    )
    sign_in(axe_page, live_url)
    for task in (failed, done):
        axe_page.goto(f"{live_url}/tasks/{task.pk}/")
        expect(axe_page.locator("#task-detail")).to_be_visible()
        check(axe_page)


def test_the_login_page(axe_page, live_url, db):
    axe_page.goto(f"{live_url}/accounts/login/")
    check(axe_page)
    # With the form's error shown.
    axe_page.fill("input[name=username]", "nobody")
    axe_page.fill("input[name=password]", "wrong-password")
    axe_page.click("form button[type=submit]")
    expect(axe_page.locator("[role=alert]").first).to_be_visible()
    check(axe_page)


def test_the_connection_form_and_the_workspace_settings(axe_page, live_url, team, provider):
    connection = ProviderConnection(workspace=team, name="Gateway", base_url=provider.base_url)
    connection.set_api_key("sk-axe-0123456789")
    connection.save()
    sign_in(axe_page, live_url)
    for path in (
        "/w/team/connections/add/",
        f"/w/team/connections/{connection.pk}/",
        "/w/team/connections/",
        "/w/team/settings/",
        "/w/team/",
    ):
        axe_page.goto(f"{live_url}{path}")
        assert axe_page.url.endswith(path), axe_page.url
        check(axe_page)


def test_the_check_itself_catches_what_it_is_for(axe_page):
    # A nameless button, an image without alt text and 10-px text: were axe not injected or
    # its results misread, every test above would pass on anything.
    axe_page.set_content(
        '<html lang="en"><body><main><button></button><img src="data:,">'
        '<p id="tiny">tiny</p></main></body></html>'
    )
    axe_page.add_style_tag(content="#tiny { font-size: 10px; }")
    found = " ".join(serious_violations(axe_page))
    assert "button-name" in found and "image-alt" in found, found
    assert small_text(axe_page) and "tiny" in small_text(axe_page)[0]
