"""The dashboard in a real Chromium: what a signed-in person sees, and how it changes live.

Tasks change state the way they do in production: a real `Poller` pass against the loopback
fake provider writes the database, and the open page must pick the change up through its
htmx refresh, without a reload. The page asks for news every 3 s, so waits are 10 s
`expect`s; fixed sleeps appear only where a test proves that nothing happens.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import Locator, Page, Request, expect

from tests.fake_provider import Reply, video
from videos.models import Status, VideoTask
from videos.polling import Poller

SAMPLE_MP4 = (
    Path(__file__).resolve().parents[2] / "sandbox" / "static" / "sandbox" / "sample.mp4"
).read_bytes()

# Three refresh periods: long enough for a busy CI machine, short enough to fail fast.
LIVE_TIMEOUT = 10_000
# Over two refresh periods (3 s each): a page still polling would have asked at least twice.
QUIET_MS = 7_000


def make_task(owner, task_id: str, **fields) -> VideoTask:
    # Not due until a test says so: `poll` then touches exactly the tasks it names.
    fields.setdefault("next_poll_at", timezone.now() + timedelta(hours=1))
    return VideoTask.objects.create(owner=owner, task_id=task_id, **fields)


def poll(poller: Poller, *tasks: VideoTask) -> None:
    """One real poller pass over exactly `tasks` (made due first: a pass only claims due tasks)."""
    VideoTask.objects.filter(pk__in=[task.pk for task in tasks]).update(next_poll_at=None)
    report = poller.run_pass()
    assert report.polled == len(tasks), f"the pass did not poll every task: {report}"


def live_requests(page: Page) -> list[str]:
    """URLs of the dashboard's refresh requests from now on, in the order the page sent them."""
    seen: list[str] = []

    def on_request(request: Request) -> None:
        if is_live_request(request):
            seen.append(request.url)

    page.on("request", on_request)
    return seen


def is_live_request(request: Request) -> bool:
    return "/live/" in request.url  # a board's refresh, /w/<slug>/live/


def count(page: Page, status: str) -> Locator:
    return page.locator(f"#counts .count-{status} strong")


def test_signing_in_shows_my_tasks_and_not_another_users(login, owner, outsider, assert_no_console_errors):
    mine = make_task(owner, "video_mine_1", label="Beach at dusk", model="sora-2", size="1280x720")
    make_task(owner, "video_mine_2", status=Status.PROCESSING, progress=40, model="veo-3")
    make_task(outsider, "video_theirs", label="Outsider's secret cut", model="kling-v2")

    page = login("owner", "owner-password-1")

    expect(page.locator("#task-rows tr.task")).to_have_count(2)
    row = page.locator(f"#task-{mine.pk}")
    expect(row).to_contain_text("Beach at dusk")
    expect(row).to_contain_text("video_mine_1")
    expect(row).to_contain_text("1280x720")
    # Another user's task must not leak anywhere: not the row, not its label, not the counts.
    expect(page.locator("main")).not_to_contain_text("video_theirs")
    expect(page.locator("main")).not_to_contain_text("Outsider's secret cut")
    expect(page.locator("#counts a.count").first.locator("strong")).to_have_text("2")
    expect(count(page, "pending")).to_have_text("1")
    expect(count(page, "processing")).to_have_text("1")
    assert_no_console_errors(page)


def test_a_poll_updates_the_open_page_without_reload(
    login, owner, provider, poller, assert_no_console_errors
):
    task = make_task(owner, "video_live", label="Live one")
    page = login("owner", "owner-password-1")
    row = page.locator(f"#task-{task.pk}")
    expect(row.locator(".badge")).to_have_text("Pending")
    expect(row.locator("progress")).to_have_attribute("value", "0")
    # A full reload would drop this; an htmx swap keeps it.
    page.evaluate("window.__noReload = 1")

    provider.script("video_live", video("video_live", "in_progress", 60, model="veo-3", size="1920x1080"))
    poll(poller, task)

    expect(row.locator(".badge")).to_have_text("Processing", timeout=LIVE_TIMEOUT)
    expect(row.locator("progress")).to_have_attribute("value", "60")
    expect(row.locator(".pct")).to_have_text("60%")
    expect(row).to_contain_text("veo-3")
    expect(row).to_contain_text("1920x1080")
    expect(count(page, "pending")).to_have_text("0")
    expect(count(page, "processing")).to_have_text("1")
    assert page.evaluate("window.__noReload") == 1
    assert_no_console_errors(page)


def test_the_download_link_appears_on_completion_and_the_counts_follow(
    login, owner, provider, poller, assert_no_console_errors
):
    finishing = make_task(owner, "video_done", label="Finishing", status=Status.PROCESSING, progress=80)
    make_task(owner, "video_busy", label="Still busy", status=Status.PROCESSING, progress=20)
    page = login("owner", "owner-password-1")
    row = page.locator(f"#task-{finishing.pk}")
    expect(row.locator("a.download")).to_have_count(0)
    expect(count(page, "processing")).to_have_text("2")
    page.evaluate("window.__noReload = 1")

    url = "https://cdn.example/videos/video_done.mp4?sig=abc&exp=1"
    expires = int((timezone.now() + timedelta(hours=2)).timestamp())
    provider.script("video_done", video("video_done", "completed", 100, url=url, expires_at=expires))
    poll(poller, finishing)

    expect(row.locator(".badge")).to_have_text("Completed", timeout=LIVE_TIMEOUT)
    link = row.locator("a.download")
    # Through the dashboard's own URL: the provider's key, when one is needed, stays on the server.
    expect(link).to_have_attribute("href", f"/tasks/{finishing.pk}/download/")
    expect(link).to_have_text("Download")
    expect(row.locator("[data-label=Link] small")).to_have_text(re.compile(r"expires in (1 h 59 min|2 h)"))
    expect(row.locator(".pct")).to_have_text("100%")
    expect(count(page, "processing")).to_have_text("1")
    expect(count(page, "completed")).to_have_text("1")
    assert page.evaluate("window.__noReload") == 1
    assert_no_console_errors(page)


def test_polling_stops_once_every_shown_task_has_finished(
    login, owner, provider, poller, live_url, assert_no_console_errors
):
    first = make_task(owner, "video_first", status=Status.PROCESSING, progress=50)
    second = make_task(owner, "video_second", status=Status.PROCESSING, progress=10)
    page = login("owner", "owner-password-1")
    seen = live_requests(page)

    provider.script("video_first", video("video_first", "completed", 100, url="https://cdn.example/1.mp4"))
    poll(poller, first)
    expect(page.locator(f"#task-{first.pk} .badge")).to_have_text("Completed", timeout=LIVE_TIMEOUT)
    # One task is still running, so the page must keep asking: the second task's news
    # below can only arrive if it does.
    expect(page.locator("#live")).to_have_attribute("data-live", "")

    provider.script("video_second", video("video_second", "failed", 10, error={"message": "Moderation"}))
    poll(poller, second)
    expect(page.locator(f"#task-{second.pk} .badge")).to_have_text("Failed", timeout=LIVE_TIMEOUT)
    expect(page.locator("#live[data-live]")).to_have_count(0)
    asked = len(seen)

    # Meanwhile a page drawn with only finished tasks must never start polling. It shares
    # the session and the quiet wait, so the suite sleeps once for both checks.
    fresh = page.context.new_page()
    fresh_errors: list[str] = []
    fresh.on(
        "console", lambda message: fresh_errors.append(message.text) if message.type == "error" else None
    )
    fresh.on("pageerror", lambda error: fresh_errors.append(str(error)))
    fresh_seen = live_requests(fresh)
    fresh.goto(f"{live_url}/")
    expect(fresh.locator("#task-rows tr.task")).to_have_count(2)
    expect(fresh.locator("#live")).not_to_have_attribute("hx-trigger", re.compile(".*"))

    page.wait_for_timeout(QUIET_MS)
    assert seen[asked:] == [], "the page kept polling after every task finished"
    assert fresh_seen == [], "a page of finished tasks polled"
    assert fresh_errors == []
    assert_no_console_errors(page)


HOSTILE_MESSAGE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
HOSTILE_MODEL = '<img src=x onerror="window.__pwned=4">sora-2'


def test_a_hostile_payload_renders_as_text_and_runs_nothing(
    login, owner, provider, poller, live_url, assert_no_console_errors, settings
):
    # The page offers the finished videos through the download proxy, which asks this provider.
    settings.VIDEO_API_BASE_URL = provider.base_url
    settings.VIDEO_API_KEY = "sk-test"
    failing = make_task(owner, "video_hostile", status=Status.PROCESSING, progress=30)
    js_link = make_task(owner, "video_js_link", status=Status.PROCESSING, progress=90)
    # Stored directly, as an older version or the admin might have: the template is the
    # last line of defence, independent of normalize() dropping such URLs.
    stored = make_task(
        owner, "video_stored_js", status=Status.COMPLETED, progress=100, url="javascript:window.__pwned=5"
    )
    page = login("owner", "owner-password-1")
    row = page.locator(f"#task-{failing.pk}")
    expect(row.locator(".badge")).to_have_text("Processing")

    provider.script(
        "video_hostile",
        video(
            "video_hostile",
            "failed",
            30,
            error={"message": HOSTILE_MESSAGE, "code": "<b>bad</b>"},
            url="javascript:window.__pwned=3",
            model=HOSTILE_MODEL,
        ),
    )
    provider.script(
        "video_js_link", video("video_js_link", "completed", 100, url="javascript:window.__pwned=3")
    )
    poll(poller, failing, js_link)

    # Arrives through the live refresh, the path where htmx parses the server's HTML.
    expect(row.locator(".badge")).to_have_text("Failed", timeout=LIVE_TIMEOUT)
    expect(page.locator(f"#task-{js_link.pk} .badge")).to_have_text("Completed", timeout=LIVE_TIMEOUT)
    for check in ("a freshly swapped row", "a full page load"):
        expect(row.locator(".error-cell")).to_contain_text(HOSTILE_MESSAGE)
        expect(row.locator(".error-cell code")).to_have_text("<b>bad</b>")
        expect(row.locator("[data-label=Model]")).to_have_text(HOSTILE_MODEL)
        for markup in ("img", "script", "b"):
            expect(row.locator(markup), check).to_have_count(0)
        expect(page.locator(f"#task-{failing.pk} a.download"), check).to_have_count(0)
        for task in (js_link, stored):
            # A finished video is still offered, but only through the dashboard's own URL,
            # which asks the provider's content endpoint instead of following the bad link.
            expect(page.locator(f"#task-{task.pk} a.download"), check).to_have_attribute(
                "href", f"/tasks/{task.pk}/download/"
            )
        expect(page.locator("a[href^='javascript:' i]"), check).to_have_count(0)
        # An <img onerror> fires after its load fails, a moment after insertion.
        page.wait_for_timeout(300)
        assert page.evaluate("typeof window.__pwned") == "undefined", check
        page.goto(f"{live_url}/")

    page.goto(f"{live_url}/tasks/{failing.pk}/")
    detail = page.locator("#task-detail")
    expect(detail.locator(".error-box")).to_contain_text(HOSTILE_MESSAGE)
    expect(detail.locator(".error-box code")).to_have_text("<b>bad</b>")
    for markup in ("img", "script", "b", "video"):
        expect(detail.locator(markup)).to_have_count(0)
    provider.script(
        "GET /videos/video_stored_js/content",
        Reply(200, body=SAMPLE_MP4, headers={"Content-Type": "video/mp4"}),
    )
    page.goto(f"{live_url}/tasks/{stored.pk}/")
    expect(page.locator("#task-detail video")).to_have_attribute(
        "src", f"/tasks/{stored.pk}/download/?inline=1"
    )
    expect(page.locator("a[href^='javascript:' i]")).to_have_count(0)
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert_no_console_errors(page)


def test_tracking_from_the_form_adds_rows_and_starts_polling(login, owner, assert_no_console_errors):
    page = login("owner", "owner-password-1")
    expect(page.locator("#task-rows")).to_contain_text("No tasks yet")
    # Nothing to watch yet, so the page must not be polling.
    expect(page.locator("#live[data-live]")).to_have_count(0)
    page.evaluate("window.__noReload = 1")

    page.fill("#id_task_ids", "video_new_1   Launch teaser\nvideo_new/2+b==\n..\n")
    page.click("#track-panel button[type=submit]")

    result = page.locator(".track-result")
    expect(result.locator(".ok")).to_contain_text("Now tracking 2 tasks")
    expect(result.locator(".ok code")).to_have_text(["video_new_1", "video_new/2+b=="])
    expect(result.locator(".form-errors")).to_contain_text("Line 3 ('..')")
    expect(page.locator("#id_task_ids")).to_have_value("")
    rows = page.locator("#task-rows tr.task")
    expect(rows).to_have_count(2)
    first = VideoTask.objects.get(owner=owner, task_id="video_new_1")
    expect(page.locator(f"#task-{first.pk} .task-name a")).to_have_text("Launch teaser")
    expect(count(page, "pending")).to_have_text("2")
    live = page.locator("#live")
    expect(live).to_have_attribute("data-live", "")
    expect(live).to_have_attribute("hx-trigger", re.compile(r"every 3s"))
    # The attribute alone is not enough: htmx must have wired up the swapped-in element.
    with page.expect_request(is_live_request, timeout=LIVE_TIMEOUT):
        pass
    assert page.evaluate("window.__noReload") == 1

    page.fill("#id_task_ids", "video_new_1")
    page.click("#track-panel button[type=submit]")
    expect(result.locator(".note")).to_have_text("Already tracked: video_new_1.")
    expect(result.locator(".ok")).to_have_count(0)
    expect(rows).to_have_count(2)
    assert VideoTask.objects.filter(owner=owner).count() == 2
    assert_no_console_errors(page)


def hide_tab(page: Page, hidden: bool) -> None:
    """Play the browser hiding or showing the tab; headless Chromium never does it itself."""
    page.evaluate(
        """(hidden) => {
            Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
            Object.defineProperty(document, "visibilityState",
                {configurable: true, get: () => (hidden ? "hidden" : "visible")});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def test_polling_pauses_while_the_tab_is_hidden(login, owner, provider, poller, assert_no_console_errors):
    task = make_task(owner, "video_hidden", status=Status.PROCESSING, progress=20)
    page = login("owner", "owner-password-1")
    seen = live_requests(page)
    # Count the refresh timer's ticks, sent or not, to tell "paused" from "timer dead" and
    # to time the return to just after a tick.
    page.evaluate(
        """() => {
            window.__ticks = 0;
            document.addEventListener("htmx:confirm", (event) => {
                if (event.detail.elt.id === "live") window.__ticks++;
            });
        }"""
    )
    # Hidden before the first tick (3 s after load), so no refresh is in flight.
    hide_tab(page, True)

    # News arrives while nobody looks: nothing may be fetched for it yet.
    provider.script("video_hidden", video("video_hidden", "in_progress", 70))
    poll(poller, task)
    # Two ticks skipped (about 6 s), then back just after the second one.
    wait_for_ticks(page, 2, timeout_ms=QUIET_MS + 1_000)
    assert seen == [], "the hidden tab kept polling"
    expect(page.locator(f"#task-{task.pk} .pct")).to_have_text("20%")

    # The next tick is 3 s away: a refresh within 1 s can only be the return itself.
    with page.expect_request(is_live_request, timeout=1_000):
        hide_tab(page, False)
    expect(page.locator(f"#task-{task.pk} .pct")).to_have_text("70%", timeout=2_000)
    assert_no_console_errors(page)


def wait_for_ticks(page: Page, ticks: int, timeout_ms: int) -> None:
    # Not wait_for_function: its polling evaluates a string, which the page's CSP forbids.
    page.evaluate(
        """([ticks, timeout]) => new Promise((resolve, reject) => {
            const gaveUp = Date.now() + timeout;
            const check = () => window.__ticks >= ticks ? resolve()
                : Date.now() > gaveUp ? reject(new Error(`fewer than ${ticks} refresh ticks`))
                : setTimeout(check, 10);
            check();
        })""",
        [ticks, timeout_ms],
    )


def test_the_copy_button_copies_the_task_id(login, owner, live_url, assert_no_console_errors):
    # Characters that must survive the data-copy attribute intact.
    task_id = "video_68d7/512d+0784=="
    task = make_task(owner, task_id, label="Copy me")
    page = login("owner", "owner-password-1")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_url)

    button = page.locator(f"#task-{task.pk} button.copy")
    expect(button).to_have_text("Copy")
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == task_id
    # The label resets, so the next copy gives feedback again.
    expect(button).to_have_text("Copy", timeout=3_000)
    assert_no_console_errors(page)


def test_a_phone_shows_tasks_without_sideways_scrolling(login, owner, assert_no_console_errors):
    now = timezone.now()
    make_task(
        owner,
        "video_" + "7f3a9c" * 15,  # a long ID with no break opportunities
        label="A long label that keeps going: product launch teaser, final cut v3 for review",
        status=Status.FAILED,
        progress=35,
        model="kling-v2-master",
        size="1920x1080",
        seconds=10,
        error_code="content_policy_violation",
        error_message="The prompt was rejected by the safety system: " + "x" * 120,
    )
    make_task(
        owner,
        "video_ok",
        status=Status.COMPLETED,
        progress=100,
        model="sora-2",
        size="1280x720",
        seconds=8,
        url="https://cdn.example/videos/" + "a" * 150 + ".mp4",
        expires_at=now + timedelta(hours=3),
    )
    make_task(owner, "video_run", status=Status.PROCESSING, progress=45, model="veo-3")
    page = login("owner", "owner-password-1")
    page.set_viewport_size({"width": 390, "height": 844})

    expect(page.locator("#task-rows tr.task")).to_have_count(3)
    expect(page.locator("table.tasks thead")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    # The table sits in an overflow box: the page may not scroll while the table does.
    assert page.evaluate(
        "(() => { const w = document.querySelector('.table-wrap');"
        " return w.scrollWidth <= w.clientWidth + 1; })()"
    )
    for box in (row.bounding_box() for row in page.locator("#task-rows tr.task").all()):
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 391, box
    expect(page.locator("#task-rows .badge").first).to_be_visible()
    assert_no_console_errors(page)
