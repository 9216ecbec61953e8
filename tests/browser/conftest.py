"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

Playwright never downloads a browser here (there is no network in CI); it launches the
system Chromium given by CHROMIUM_PATH, else /usr/bin/chromium, else `chromium` on PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from videos.client import VideoAPIClient
from videos.polling import Poller

DEFAULT_CHROMIUM = "/usr/bin/chromium"
# Long enough for a cold Chromium on a busy CI machine, short enough that a broken page
# fails the test in seconds instead of hanging the run.
DEFAULT_TIMEOUT_MS = 10_000
CHROMIUM_ARGS = [
    # CI runs as root in a container, where Chromium's sandbox cannot start.
    "--no-sandbox",
    "--disable-gpu",
    # Nothing may leave the machine: no QUIC probes, updates, sync or background fetches.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Containers give /dev/shm 64 MB, which crashes Chromium's renderers.
    "--disable-dev-shm-usage",
]


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    # The marker comes from this hook rather than a `pytestmark` in each module, so no new
    # browser test can forget it. It is added before pytest's -m filtering runs.
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)
    yield
    # Browser tests run last, after pytest-django's own reordering. Once Playwright starts,
    # its event loop stays marked as running in this thread until the session ends (see
    # `browser`): any test after it would run with Django's async-safety check switched
    # off and could not call asyncio.run(). Last, they also let the fast tests fail first.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


def _chromium_path() -> str | None:
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        # Asked for by name: a wrong path is a mistake to report, not a reason to quietly
        # test another browser.
        if not os.access(explicit, os.X_OK):
            pytest.fail(f"CHROMIUM_PATH={explicit!r} is not an executable file")
        return explicit
    if os.access(DEFAULT_CHROMIUM, os.X_OK):
        return DEFAULT_CHROMIUM
    return shutil.which("chromium")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    path = _chromium_path()
    if path is None:
        if _truthy(os.environ.get("CI")):
            pytest.fail(
                "Chromium not found (CHROMIUM_PATH, /usr/bin/chromium, `chromium` on PATH). "
                "CI must run the browser tests: install Debian's chromium package."
            )
        pytest.skip(
            "Chromium not found at /usr/bin/chromium; install Debian's chromium package "
            "to run the browser tests"
        )

    # Playwright's sync API runs an asyncio event loop in this thread (in a greenlet) for as
    # long as it lives, so Django sees a "running loop" and raises SynchronousOnlyOperation on
    # every ORM call made by the tests and by pytest-django's database fixtures. Nothing here
    # is actually async: the test code and the live server's thread stay strictly
    # synchronous, so the check is a false alarm. The flag is set only while Playwright runs
    # and the previous value is restored afterwards.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page in its own context (no cookies shared between tests).

    `page.console_errors` collects console errors, uncaught exceptions and CSP violations
    (Chromium reports those as console errors); `assert_no_console_errors(page)` checks it.
    """
    context = browser.new_context()
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    new_page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        source = message.location.get("url", "")
        # Chromium asks for /favicon.ico on its own and logs the 404; no page asked for it.
        if message.type == "error" and source != f"{_origin(new_page.url)}/favicon.ico":
            errors.append(f"console: {message.text} ({source})")

    new_page.on("console", on_console)
    new_page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    new_page.console_errors = errors  # type: ignore[attr-defined]
    yield new_page
    context.close()
    # Checked again after every test, so a CSP violation or a broken script fails the run
    # even where the test forgot to look. A test that provokes errors on purpose clears
    # `page.console_errors` once it has asserted on them.
    _assert_no_console_errors(new_page)


def _assert_no_console_errors(page: Page) -> None:
    errors = list(page.console_errors)  # type: ignore[attr-defined]
    # Reported once: the check after the test must not repeat what the test already said.
    page.console_errors.clear()  # type: ignore[attr-defined]
    assert not errors, "the browser reported errors:\n" + "\n".join(errors)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def assert_no_console_errors() -> Callable[[Page], None]:
    """`assert_no_console_errors(page)`: fail if the page logged an error so far."""
    return _assert_no_console_errors


@pytest.fixture
def live_url(live_server) -> str:
    """The live server's root URL without a trailing slash: f"{live_url}/accounts/login/".

    Requesting it gives the test transactional database access (pytest-django adds
    `transactional_db` to any test using `live_server`), so rows the test creates are
    committed and visible to the server's thread.

    Static files: the live server wraps the site in staticfiles' StaticFilesHandler, which
    answers /static/ from the finders before WhiteNoise sees the request, so no
    collectstatic is needed; test_smoke checks that app.css is a 200 served as text/css.

    The server listens on http://localhost. Chromium counts localhost as a secure context,
    which is why the production settings' Secure session and CSRF cookies still work over
    plain HTTP; a non-loopback DJANGO_LIVE_TEST_SERVER_ADDRESS would break signing in.
    """
    return live_server.url.rstrip("/")


@pytest.fixture
def login(page: Page, live_url: str) -> Callable[[str, str], Page]:
    """Sign in on `page` through the real form, as a person would; returns on the dashboard."""

    def sign_in(username: str, password: str) -> Page:
        page.goto(f"{live_url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("form button[type=submit]")
        try:
            page.wait_for_url(f"{live_url}/")
        except PlaywrightTimeoutError:
            # Say why instead of a bare timeout: usually the form's error or a CSRF 403.
            shown = page.locator("[role=alert]").all_inner_texts()
            pytest.fail(f"signing in as {username!r} stayed on {page.url}: {shown or page.title()}")
        return page

    return sign_in


@pytest.fixture
def poller(provider, db) -> Iterator[Poller]:
    """A real poller against the test's fake provider; tests run its passes themselves."""
    client = VideoAPIClient(provider.base_url, "sk-test", timeout=2.0, connect_timeout=1.0)
    engine = Poller(client, interval=5.0, concurrency=2)
    yield engine
    engine.close()
