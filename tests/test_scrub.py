"""The key never shows, even when the provider echoes it: the scrubber's rule, then the
whole way from a real provider on loopback to the database, the pages, the admin and the log."""

from __future__ import annotations

import io
import json
import logging
import time
from datetime import timedelta
from urllib.parse import quote, quote_plus

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.fake_provider import Reply, video
from videos.client import VideoAPIClient
from videos.models import ProviderState, Status, Submission, TaskEvent, VideoTask
from videos.polling import Poller
from videos.submissions import VideoRequest, reconcile, submit

KEY = "sk-proj-Zq4Lm8Rt2Vx6Pb0Nc3Hd7Kf1Wj5Ys9Ge4Ua8Oi2Ql6Tn0Xc"
# A key with the characters percent-encoding and JSON escaping change.
SLASHED_KEY = "gk_live/Zq4+Lm8Rt2=Vx6Pb0Nc3Hd7/Kf1Wj5"
PIECES = {KEY[i : i + 8] for i in range(len(KEY) - 7)}


def leaked(text: str) -> set[str]:
    """The pieces of KEY, 8 characters or more, that `text` shows."""
    return {piece for piece in PIECES if piece in text}


@pytest.fixture
def scrub_rule():
    # Imported here rather than at the top, so the end-to-end tests below run (and fail)
    # on code that has no scrubber at all.
    from videos import scrub

    return scrub


# The rule


def test_the_whole_key_is_replaced_and_the_rest_kept(scrub_rule):
    text = f"Incorrect API key provided: {KEY}. See https://docs.example/keys"
    assert scrub_rule.scrubber_for(KEY).text(text) == (
        "Incorrect API key provided: [key]. See https://docs.example/keys"
    )


def test_text_without_the_key_comes_back_as_it_was(scrub_rule):
    text = "A calico cat plays the piano, \x01 a control character, sk-proj"
    assert scrub_rule.scrubber_for(KEY).text(text) is text
    assert scrub_rule.scrubber_for().text(text) is text  # no secrets in force


def test_percent_encoded_forms_are_replaced(scrub_rule):
    scrub = scrub_rule.scrubber_for(SLASHED_KEY)
    for encoded in (quote(SLASHED_KEY, safe=""), quote(SLASHED_KEY), quote_plus(SLASHED_KEY)):
        assert encoded != SLASHED_KEY
        assert scrub.text(f"GET /v1/videos?api_key={encoded}&x=1") == "GET /v1/videos?api_key=[key]&x=1"


def test_json_escaped_forms_are_replaced(scrub_rule):
    scrub = scrub_rule.scrubber_for(SLASHED_KEY)
    body = json.dumps({"authorization": f"Bearer {SLASHED_KEY}"})
    assert scrub.text(f"upstream said {body}") == 'upstream said {"authorization": "Bearer [key]"}'
    php_style = body.replace("/", "\\/")
    assert scrub.text(php_style) == '{"authorization": "Bearer [key]"}'


def test_a_prefix_cut_at_a_truncation_boundary_is_replaced(scrub_rule):
    scrub = scrub_rule.scrubber_for(KEY)
    message = "m" * 480 + KEY + "n" * 64
    # Scrub, then cut: what a 500-character column keeps holds no piece of the key.
    assert scrub.text(message)[:500] == "m" * 480 + "[key]" + "n" * 15
    # A provider that cut the key itself: the 30 characters it kept are still a piece.
    assert scrub.text(f"key {KEY[:30]}") == "key [key]"
    assert scrub.text(f"key {KEY[:8]}") == "key [key]"


def test_a_suffix_and_a_middle_piece_are_replaced(scrub_rule):
    scrub = scrub_rule.scrubber_for(KEY)
    assert scrub.text(f"{KEY[-12:]} was refused") == "[key] was refused"
    assert scrub.text(f"({KEY[10:40]})") == "([key])"


def test_pieces_shorter_than_eight_characters_stay(scrub_rule):
    # Seven characters of a 56-character key are not worth hiding and would match innocent
    # text; the rule's threshold is MIN_PIECE.
    assert scrub_rule.MIN_PIECE == 8
    assert scrub_rule.scrubber_for(KEY).text(f"id {KEY[20:27]}") == f"id {KEY[20:27]}"


def test_a_short_secret_is_only_matched_whole(scrub_rule):
    scrub = scrub_rule.scrubber_for("sk-abc")
    assert scrub.text("key sk-abc, not sk-ab") == "key [key], not sk-ab"


def test_every_secret_in_force_is_replaced(scrub_rule):
    scrub = scrub_rule.scrubber_for(KEY, SLASHED_KEY)
    assert scrub.text(f"{KEY} and {SLASHED_KEY}") == "[key] and [key]"


def test_control_characters_cannot_hide_a_key(scrub_rule):
    # normalize drops them before storing; they must not join two halves back together.
    split = f"bad key {KEY[:20]}\x00{KEY[20:40]}\x07{KEY[40:]}"
    assert scrub_rule.scrubber_for(KEY).text(split) == "bad key [key]"


def test_json_values_are_scrubbed_through_keys_and_nested_lists(scrub_rule):
    scrub = scrub_rule.scrubber_for(KEY)
    payload = {
        "id": "video_1",
        "progress": 40,
        "ratio": 0.5,
        "done": False,
        "error": None,
        KEY: "the key as a key",
        "metadata": {"nested": [[{"auth": f"Bearer {KEY}"}, [KEY[:30], 7]]], f"x{KEY[-9:]}": 1},
    }
    assert scrub.value(payload) == {
        "id": "video_1",
        "progress": 40,
        "ratio": 0.5,
        "done": False,
        "error": None,
        "[key]": "the key as a key",
        "metadata": {"nested": [[{"auth": "Bearer [key]"}, ["[key]", 7]]], "x[key]": 1},
    }


def test_a_clean_payload_is_returned_untouched(scrub_rule):
    payload = video("video_1", "in_progress", 40, metadata={"prompt": "Storm over the bay"}).json
    assert scrub_rule.scrubber_for(KEY).value(payload) is payload


def test_the_configured_key_is_in_force(scrub_rule, settings):
    settings.VIDEO_API_KEY = KEY
    assert scrub_rule.scrub(f"echo {KEY[5:40]}") == "echo [key]"
    assert scrub_rule.scrub_json({"k": KEY}, SLASHED_KEY) == {"k": "[key]"}
    assert scrub_rule.scrub(SLASHED_KEY, SLASHED_KEY) == "[key]"


def test_every_log_line_leaves_scrubbed(settings):
    # The handler the settings install on the root logger, whatever logged the line.
    settings.VIDEO_API_KEY = KEY
    handler = next(h for h in logging.getLogger().handlers if h.name == "stdout")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        logger = logging.getLogger("some.library")
        logger.warning("request failed: %s", f"Authorization: Bearer {KEY}")
        logger.warning(f"half a key {KEY[:25]}")
        try:
            raise ValueError(f"upstream echoed {KEY}")
        except ValueError:
            logger.exception("while polling")
    finally:
        handler.setStream(previous)
    text = stream.getvalue()
    assert "request failed: Authorization: Bearer [key]" in text
    assert "half a key [key]" in text
    assert "ValueError: upstream echoed [key]" in text
    assert leaked(text) == set()


# End to end: a real provider on loopback echoes the key


def stored_text() -> str:
    """Every stored value of every task, event, submission and provider state, as text."""
    rows = []
    for model in (VideoTask, TaskEvent, Submission, ProviderState):
        rows += [json.dumps(row, default=str, ensure_ascii=False) for row in model.objects.values()]
    return "\n".join(rows)


@pytest.fixture
def configured(settings, provider):
    settings.VIDEO_API_BASE_URL = provider.base_url
    settings.VIDEO_API_KEY = KEY
    settings.VIDEO_MODELS = ["veo-3"]
    settings.VIDEO_SIZES = ["1280x720"]
    settings.VIDEO_SECONDS = []
    return provider


@pytest.fixture
def poller(configured, db):
    client = VideoAPIClient(configured.base_url, KEY, timeout=2.0, connect_timeout=1.0)
    poller = Poller(client, interval=5.0, concurrency=2, rng=lambda: 0.5)
    yield poller
    poller.close()


@pytest.fixture
def operator(db) -> Client:
    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-1")
    client = Client()
    client.force_login(admin)
    return client


def pages(client: Client, *paths: str) -> str:
    html = []
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        html.append(response.content.decode())
    return "\n".join(html)


def logged(caplog) -> str:
    return caplog.text + "\n".join(record.getMessage() for record in caplog.records)


def test_a_polled_answer_echoing_the_key_is_stored_and_shown_without_it(
    configured, poller, owner, client, operator, caplog
):
    caplog.set_level(logging.INFO)
    message = f"Incorrect API key provided: {KEY}. "
    # The second copy straddles the 2000 characters an error message keeps.
    message += "x" * (1985 - len(message)) + KEY
    configured.script(
        "echo",
        video(
            "echo",
            "failed",
            30,
            model=f"veo-3 {KEY[:30]}",
            size=KEY[:30],
            url=f"https://cdn.example/v.mp4?api_key={KEY}",
            error={"message": message, "code": f"invalid_api_key {KEY}"},
            fail_reason=KEY[:30],
            metadata={"echo": KEY, KEY: "the key as a key", "nested": [[{"auth": f"Bearer {KEY[:30]}"}]]},
        ),
    )
    task = VideoTask.objects.create(owner=owner, task_id="echo")
    report = poller.run_pass()
    assert report.polled == 1
    assert leaked(stored_text()) == set()
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.error_message.startswith("Incorrect API key provided: [key]. xxx")
    assert task.metadata["echo"] == "[key]"
    assert task.raw_payload["metadata"]["[key]"] == "the key as a key"
    client.force_login(owner)
    shown = pages(client, "/", f"/tasks/{task.pk}/")
    assert "Incorrect API key provided: [key]" in shown
    admin = pages(
        operator,
        "/admin/videos/videotask/",
        f"/admin/videos/videotask/{task.pk}/change/",
        "/admin/videos/taskevent/",
    )
    assert "the key as a key" in admin  # the raw payload is shown, scrubbed
    assert leaked(shown + admin) == set()
    assert leaked(logged(caplog)) == set()


def test_a_refused_key_echoed_in_the_error_code_is_never_shown(
    configured, poller, owner, client, operator, caplog
):
    caplog.set_level(logging.INFO)
    # A code long enough that cutting it to 100 characters first would keep half the key.
    code = "invalid_api_key_" * 5 + KEY
    configured.script("refused", Reply(401, {"error": {"message": f"Bad key {KEY}", "code": code}}))
    task = VideoTask.objects.create(owner=owner, task_id="refused")
    assert poller.run_pass().provider == "blocked"
    state = ProviderState.objects.get(base_url=configured.base_url)
    assert state.blocked_reason.startswith("The provider refused the API key (HTTP 401, invalid_api_key_")

    assert leaked(stored_text()) == set()
    client.force_login(owner)
    shown = pages(client, "/", f"/tasks/{task.pk}/")
    assert "Polling is stopped:" in shown
    admin = pages(
        operator,
        f"/admin/videos/videotask/{task.pk}/change/",
        "/admin/videos/providerstate/",
        f"/admin/videos/providerstate/{state.pk}/change/",
    )
    assert leaked(shown + admin) == set()
    assert leaked(logged(caplog)) == set()


@pytest.mark.parametrize(
    "reply",
    [
        # A refusal whose 600-character message has the key across the 500th character.
        Reply(400, {"error": {"message": "m" * 480 + KEY + "n" * 64, "code": "invalid_request_error"}}),
        # A refused key, echoed in a code longer than the 100 characters a code keeps.
        Reply(401, {"error": {"message": f"Incorrect API key {KEY}", "code": "invalid_api_key_" * 5 + KEY}}),
        # A created video whose answer carries the key in its fields.
        video(
            "video_echo",
            "queued",
            0,
            model=f"veo-3-{KEY[:30]}",
            error={"message": f"warning: key {KEY} is deprecated", "code": KEY},
            metadata={"echo": KEY, KEY: [KEY[:30]]},
        ),
    ],
    ids=["400-message", "401-code", "200-answer"],
)
def test_a_create_answer_echoing_the_key_is_stored_and_shown_without_it(
    configured, client, owner, operator, caplog, reply
):
    caplog.set_level(logging.INFO)
    configured.script("POST /videos", reply)
    client.force_login(owner)
    response = client.post(
        "/videos/new/",
        {"prompt": "Waves at dusk", "model": "veo-3", "size": "1280x720", "seconds": "8"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    (submission,) = Submission.objects.all()
    if reply.status == 200:
        assert submission.state == Submission.State.CREATED
    else:
        assert submission.state == Submission.State.REJECTED
    assert leaked(stored_text()) == set()
    assert "[key]" in stored_text()
    shown = response.content.decode() + pages(
        client, "/", *(f"/tasks/{t.pk}/" for t in VideoTask.objects.all())
    )
    admin = pages(
        operator,
        "/admin/videos/submission/",
        f"/admin/videos/submission/{submission.pk}/change/",
        *(f"/admin/videos/videotask/{t.pk}/change/" for t in VideoTask.objects.all()),
    )
    assert leaked(shown + admin) == set()
    assert leaked(logged(caplog)) == set()


def test_a_listed_video_echoing_the_key_is_tracked_without_it(provider, owner, caplog):
    caplog.set_level(logging.INFO)
    # The key only the client holds (none configured): the one the provider could echo.
    client = VideoAPIClient(provider.base_url, KEY, timeout=2.0, connect_timeout=1.0)
    provider.script("POST /videos", Reply(200, {"object": "video", "status": "queued"}))
    submission = submit(owner, VideoRequest(prompt="Storm over the bay", model="veo-3"), client)
    assert submission.state == Submission.State.UNKNOWN
    listed = video(
        "video_listed",
        "in_progress",
        20,
        model="veo-3",
        prompt="Storm over the bay",
        created_at=int(time.time()),
        size=KEY[:30],
        error={"message": f"echo {KEY}"},
        metadata={"echo": KEY},
    ).json
    provider.script("GET /videos", Reply(200, {"object": "list", "data": [listed], "has_more": False}))
    try:
        assert reconcile(client, now=timezone.now() + timedelta(seconds=30)) == 1
    finally:
        client.close()
    assert leaked(stored_text()) == set()
    task = VideoTask.objects.get(task_id="video_listed")
    assert task.metadata == {"echo": "[key]"}
    assert leaked(logged(caplog)) == set()
