from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from videos.normalize import (
    Snapshot,
    canonical_status,
    find_error,
    find_url,
    normalize,
    parse_progress,
    parse_seconds,
    parse_timestamp,
)

# Written out rather than read from the module, so a word dropped from the module fails here.
STATUS_TABLE = {
    "pending": [
        "queued",
        "pending",
        "submitted",
        "not_start",
        "created",
        "queueing",
        "in_queue",
        "waiting",
        "preprocessing",
        "starting",
    ],
    "processing": ["in_progress", "processing", "running", "generating", "dreaming", "rendering", "started"],
    "completed": ["completed", "succeeded", "success", "succeed", "done", "complete", "finished"],
    "failed": [
        "failed",
        "failure",
        "error",
        "cancelled",
        "canceled",
        "expired",
        "rejected",
        "timeout",
        "fail",
    ],
}
STATUS_CASES = [
    (variant, canonical)
    for canonical, words in STATUS_TABLE.items()
    for word in words
    for variant in (word, word.upper(), f"  {word.title()}\t\n")
]

T = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # Unix 1700000000
T_MS = T + timedelta(milliseconds=123)


# --- status -------------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "expected"), STATUS_CASES)
def test_status_words(word: str, expected: str) -> None:
    assert canonical_status(word) == expected
    snapshot = normalize({"status": word})
    assert snapshot.status == expected
    # The provider's word is kept as sent (case included), only trimmed.
    assert snapshot.raw_status == word.strip()


@pytest.mark.parametrize(
    ("raw", "raw_status"),
    [
        ("unknown", "unknown"),
        ("UNKNOWN", "UNKNOWN"),
        ("moderating", "moderating"),
        ("complete d", "complete d"),
        ("", ""),
        ("   ", ""),
        (None, ""),
        (3, "3"),
        (1.5, "1.5"),
        (True, "True"),
        ({"state": "completed"}, ""),
        (["completed"], ""),
    ],
)
def test_unknown_status_keeps_state_but_stores_raw(raw: Any, raw_status: str) -> None:
    assert canonical_status(raw) is None
    snapshot = normalize({"status": raw, "progress": 30})
    assert snapshot.status is None
    assert snapshot.raw_status == raw_status
    assert snapshot.progress == 30


def test_status_key_absent() -> None:
    snapshot = normalize({"id": "video_1"})
    assert snapshot.status is None
    assert snapshot.raw_status == ""


def test_raw_status_is_truncated_and_cleaned() -> None:
    snapshot = normalize({"status": " weird\x00" + "x" * 100})
    assert snapshot.raw_status == "weird" + "x" * 59
    assert len(snapshot.raw_status) == 64


@pytest.mark.parametrize(
    "payload",
    [
        {"error": {"message": "moderation blocked", "code": "policy"}},
        {"error": {"message": "", "code": "policy"}},
        {"error": {"code": 500}},
        {"error": "upstream exploded"},
        {"status": None, "error": "upstream exploded"},
        {"status": "", "error": "upstream exploded"},
        {"status": "  ", "error": "upstream exploded"},
        {"error_message": "bad prompt"},
        {"fail_reason": "bad prompt"},
        {"failure_reason": "bad prompt"},
    ],
)
def test_missing_status_with_error_means_failed(payload: dict[str, Any]) -> None:
    assert normalize(payload).status == "failed"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # An unknown word is not a missing one: keep state, even with an error beside it.
        ({"status": "moderating", "error": "slow upstream"}, None),
        # A running task may carry a warning; it stays running.
        ({"status": "running", "error": "slow upstream"}, "processing"),
        ({"status": "succeeded", "error": {"message": "", "code": ""}}, "completed"),
        # Empty error shapes are not errors.
        ({"error": {"message": "", "code": ""}}, None),
        ({"error": {"message": None, "code": None}}, None),
        ({"error": ""}, None),
        ({"error": None}, None),
        ({"error": {"code": 0, "message": ""}}, None),
        ({"error_message": "   "}, None),
        # A top-level message alone is chatter, not an error.
        ({"message": "task is being processed"}, None),
        ({"message": "failed to do nothing", "code": "x"}, None),
    ],
)
def test_missing_status_without_a_real_error(payload: dict[str, Any], expected: str | None) -> None:
    assert normalize(payload).status == expected


# --- envelope ------------------------------------------------------------------------------


def test_data_envelope_is_unwrapped() -> None:
    payload = {
        "code": "success",
        "message": "",
        "data": {
            "task_id": "t1",
            "status": "SUCCESS",
            "progress": "100%",
            "url": "https://cdn.example/v.mp4",
        },
    }
    snapshot = normalize(payload)
    assert snapshot.status == "completed"
    assert snapshot.raw_status == "SUCCESS"
    assert snapshot.url == "https://cdn.example/v.mp4"
    # The envelope's "code" must not leak in as an error code.
    assert snapshot.error_code is None


def test_data_envelope_with_failure_inside() -> None:
    snapshot = normalize({"code": 0, "data": {"id": "x", "status": "FAILURE", "fail_reason": "nsfw"}})
    assert (snapshot.status, snapshot.error_message, snapshot.remote_id) == ("failed", "nsfw", "x")


@pytest.mark.parametrize(
    "payload",
    [
        {"status": "queued", "data": {"status": "completed"}},
        {"id": "video_1", "data": {"status": "completed"}},
    ],
)
def test_task_with_its_own_status_or_id_is_not_unwrapped(payload: dict[str, Any]) -> None:
    assert normalize(payload).status != "completed"


def test_data_list_is_not_an_envelope() -> None:
    snapshot = normalize({"data": [{"status": "completed"}], "has_more": False})
    assert snapshot.status is None


def test_envelope_is_unwrapped_only_once() -> None:
    assert normalize({"data": {"data": {"status": "completed"}}}).status is None


# --- progress ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (45, 45),
        (100, 100),
        (-5, 0),
        (150, 100),
        (10**400, 100),
        (-(10**400), 0),
        (45.6, 46),
        (45.4, 45),
        (45.5, 46),
        (0.45, 45),
        (0.004, 0),
        (0.999, 100),
        (0.0, 0),
        (1.0, 1),
        (1.5, 2),
        (99.5, 100),
        (-0.5, 0),
        (1e308, 100),
        ("45", 45),
        (" 45 ", 45),
        ("45%", 45),
        ("45 %", 45),
        ("100%", 100),
        ("150%", 100),
        ("-5", 0),
        ("0.45", 45),
        (".5", 50),
        ("45.6", 46),
        ("1.0", 1),
        ("0.5%", 1),
        ("0.45%", 0),
        ("1", 1),
        ("0", 0),
        (Decimal("0.45"), 45),
        (Decimal("45"), 45),
        (True, None),
        (False, None),
        (None, None),
        ("", None),
        ("%", None),
        ("abc", None),
        ("45%%", None),
        ("4 5", None),
        ("nan", None),
        ("inf", None),
        ("1e400", None),
        ("1_0", None),
        (float("nan"), None),
        (float("inf"), None),
        (float("-inf"), None),
        (Decimal("NaN"), None),
        (Decimal("sNaN"), None),
        ([45], None),
        ({"value": 45}, None),
        ("9" * 1000, None),
    ],
)
def test_parse_progress(value: Any, expected: int | None) -> None:
    result = parse_progress(value)
    assert result == expected
    assert result is None or type(result) is int


@pytest.mark.parametrize("word", STATUS_TABLE["completed"])
@pytest.mark.parametrize("progress", [None, 0, 40, "40%", "garbage", 0.3])
def test_completed_means_full_progress(word: str, progress: Any) -> None:
    assert normalize({"status": word, "progress": progress}).progress == 100


@pytest.mark.parametrize("word", ["failed", "running", "queued", "mystery"])
def test_progress_is_not_forced_on_other_statuses(word: str) -> None:
    assert normalize({"status": word, "progress": 40}).progress == 40
    assert normalize({"status": word}).progress is None


# --- timestamps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1700000000, T),
        (1700000000.0, T),
        (1700000000.5, T + timedelta(milliseconds=500)),
        ("1700000000", T),
        (" 1700000000 ", T),
        ("1700000000.5", T + timedelta(milliseconds=500)),
        (1700000000123, T_MS),
        ("1700000000123", T_MS),
        (1700000000123.0, T_MS),
        (Decimal("1700000000"), T),
        ("2023-11-14T22:13:20Z", T),
        ("2023-11-14t22:13:20z", T),
        ("2023-11-14T22:13:20.123Z", T_MS),
        ("2023-11-14T22:13:20.123000000Z", T_MS),
        ("2023-11-14T22:13:20+00:00", T),
        ("2023-11-15T03:43:20+05:30", T),
        ("2023-11-14T17:13:20-05:00", T),
        ("2023-11-15T03:43:20+0530", T),
        ("2023-11-14T22:13:20", T),
        ("2023-11-14 22:13:20", T),
        ("2023-11-14 22:13:20Z", T),
        ("2023-11-14", datetime(2023, 11, 14, tzinfo=UTC)),
        ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (0, None),
        (0.0, None),
        ("0", None),
        ("", None),
        ("   ", None),
        (None, None),
        (True, None),
        (False, None),
        (-1, None),
        (-1700000000, None),
        ("-1700000000", None),
        ("garbage", None),
        ("2023-13-45T99:99:99Z", None),
        ("yesterday", None),
        ("Tue, 14 Nov 2023 22:13:20 GMT", None),
        # Go's zero time means "unset", as does anything up to the epoch.
        ("0001-01-01T00:00:00Z", None),
        ("1970-01-01T00:00:00Z", None),
        ("1969-12-31T23:59:59Z", None),
        # Beyond what a datetime holds, in every spelling.
        ("10000-01-01T00:00:00Z", None),
        ("9999-12-31T23:59:59-01:00", None),
        (253402300800, None),
        (10**15 * 1000, None),
        (10**400, None),
        ("9" * 40, None),
        ("9" * 5000, None),
        (1e308, None),
        ("1e400", None),
        (float("nan"), None),
        (float("inf"), None),
        (Decimal("sNaN"), None),
        ([1700000000], None),
        ({"seconds": 1700000000}, None),
    ],
)
def test_parse_timestamp(value: Any, expected: datetime | None) -> None:
    result = parse_timestamp(value)
    assert result == expected
    if result is not None:
        assert result.tzinfo is UTC


def test_timestamp_with_offset_is_converted_to_utc_not_relabelled() -> None:
    result = parse_timestamp("2023-11-15T03:43:20+05:30")
    assert result is not None
    assert (result.hour, result.minute, result.utcoffset()) == (22, 13, timedelta(0))


@pytest.mark.parametrize("value", ["2023-11-14T22:13:20", "2023-11-14 22:13:20"])
def test_naive_timestamp_is_utc_whatever_the_server_zone(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # astimezone() on a naive datetime assumes the process's local zone; a server outside
    # UTC would shift every naive time by its offset.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_timestamp(value) == T
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"created_at": 1700000000}, T),
        ({"created": 1700000000}, T),
        ({"created_at": 1700000000, "created": 1600000000}, T),
        ({"created_at": 0, "created": 1700000000}, T),
        ({"created_at": "", "created": "2023-11-14T22:13:20Z"}, T),
        ({"created_at": "garbage", "created": 1700000000}, T),
        ({"created_at": None}, None),
        ({}, None),
    ],
)
def test_created_alias(payload: dict[str, Any], expected: datetime | None) -> None:
    assert normalize(payload).remote_created_at == expected


@pytest.mark.parametrize("word", [*STATUS_TABLE["pending"], *STATUS_TABLE["processing"], "mystery", None])
def test_completed_at_ignored_while_not_terminal(word: str | None) -> None:
    snapshot = normalize({"status": word, "completed_at": 1700000000, "finished_at": 1700000000})
    assert snapshot.completed_at is None


@pytest.mark.parametrize("word", [*STATUS_TABLE["completed"], *STATUS_TABLE["failed"]])
def test_completed_at_kept_on_terminal(word: str) -> None:
    assert normalize({"status": word, "completed_at": 1700000000}).completed_at == T
    assert normalize({"status": word, "finished_at": "2023-11-14T22:13:20Z"}).completed_at == T
    assert normalize({"status": word}).completed_at is None


def test_completed_at_when_failure_is_inferred_from_error() -> None:
    assert normalize({"error": "boom", "completed_at": 1700000000}).completed_at == T


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"completed_at": 1700000000, "finished_at": 1600000000}, T),
        ({"completed_at": 0, "finished_at": 1700000000}, T),
        ({"completed_at": None, "finished_at": 1700000000}, T),
        ({"completed_at": "", "finished_at": ""}, None),
    ],
)
def test_completed_at_prefers_completed_at_over_finished_at(
    payload: dict[str, Any], expected: datetime | None
) -> None:
    assert normalize({"status": "completed", **payload}).completed_at == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1700000000, T), ("2023-11-14T22:13:20Z", T), (1700000000123, T_MS), (0, None), ("", None)],
)
def test_expires_at(value: Any, expected: datetime | None) -> None:
    # Expiry is known before completion, so it is read whatever the status.
    assert normalize({"status": "running", "expires_at": value}).expires_at == expected


# --- seconds, size, model ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8", Decimal(8)),
        (" 8 ", Decimal(8)),
        ("10.0", Decimal(10)),
        ("4.25", Decimal("4.25")),
        (10, Decimal(10)),
        (10.5, Decimal("10.5")),
        (0.1, Decimal("0.1")),
        ("8s", Decimal(8)),
        ("10.5s", Decimal("10.5")),
        (Decimal("12"), Decimal(12)),
        ("1e2", Decimal(100)),
        (100000, Decimal(100000)),
        ("100000", Decimal(100000)),
        (100001, None),
        ("100000.01", None),
        (1e9, None),
        (10**400, None),
        ("9" * 1000, None),
        ("1e999999999", None),
        (0, None),
        ("0", None),
        (0.0, None),
        ("-0", None),
        (-1, None),
        ("-8", None),
        (-0.5, None),
        (True, None),
        (False, None),
        (None, None),
        ("", None),
        ("s", None),
        ("eight", None),
        ("8 seconds", None),
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("Infinity", None),
        (float("nan"), None),
        (float("inf"), None),
        (Decimal("NaN"), None),
        (Decimal("Infinity"), None),
        ([8], None),
        ({"seconds": 8}, None),
    ],
)
def test_parse_seconds(value: Any, expected: Decimal | None) -> None:
    result = parse_seconds(value)
    assert result == expected
    if result is not None:
        assert isinstance(result, Decimal)
        # It must fit the model's DecimalField(max_digits=8, decimal_places=2).
        assert result.quantize(Decimal("0.01")).as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"seconds": "8"}, Decimal(8)),
        ({"duration": 5}, Decimal(5)),
        ({"seconds": "8", "duration": 5}, Decimal(8)),
        ({"seconds": None, "duration": "5"}, Decimal(5)),
        ({"seconds": "garbage", "duration": "5"}, Decimal(5)),
        ({}, None),
    ],
)
def test_seconds_and_duration_alias(payload: dict[str, Any], expected: Decimal | None) -> None:
    assert normalize(payload).seconds == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"size": "1280x720"}, "1280x720"),
        ({"size": "  1280x720\n"}, "1280x720"),
        ({"resolution": "720p"}, "720p"),
        ({"size": "1280x720", "resolution": "720p"}, "1280x720"),
        ({"size": "", "resolution": "720p"}, "720p"),
        ({"size": None, "resolution": "720p"}, "720p"),
        ({"size": 720}, "720"),
        ({"size": "x" * 40}, "x" * 32),
        ({"size": ""}, None),
        ({"size": "   "}, None),
        ({"size": True}, None),
        ({"size": {"w": 1280, "h": 720}}, None),
        ({"size": [1280, 720]}, None),
        ({}, None),
    ],
)
def test_size(payload: dict[str, Any], expected: str | None) -> None:
    assert normalize(payload).size == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sora-2", "sora-2"),
        (" veo-3.1\t", "veo-3.1"),
        ("m" * 150, "m" * 100),
        ("kling\x00-v2", "kling-v2"),
        ("", None),
        (None, None),
        (False, None),
        ({"name": "sora-2"}, None),
    ],
)
def test_model(value: Any, expected: str | None) -> None:
    assert normalize({"model": value}).model == expected


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"error": {"message": "blocked", "code": "moderation_blocked"}}, ("moderation_blocked", "blocked")),
        ({"error": {"message": "blocked", "code": ""}}, (None, "blocked")),
        ({"error": {"message": "", "code": "moderation_blocked"}}, ("moderation_blocked", None)),
        ({"error": {"message": "blocked", "code": 429}}, ("429", "blocked")),
        ({"error": {"message": "blocked", "code": 0}}, (None, "blocked")),
        ({"error": {"message": "blocked", "code": True}}, (None, "blocked")),
        ({"error": {"message": "blocked", "code": {"nested": 1}}}, (None, "blocked")),
        ({"error": {"message": {"text": "x"}, "code": "c"}}, ("c", None)),
        ({"error": {"message": "  blocked  ", "type": "invalid_request"}}, (None, "blocked")),
        ({"error": "plain failure"}, (None, "plain failure")),
        ({"error": ""}, (None, None)),
        ({"error": None}, (None, None)),
        ({"error": True}, (None, None)),
        ({"error": ["a", "b"]}, (None, None)),
        ({"error_message": "bad prompt"}, (None, "bad prompt")),
        ({"fail_reason": "bad prompt"}, (None, "bad prompt")),
        ({"failure_reason": "bad prompt"}, (None, "bad prompt")),
        ({"error_message": "", "fail_reason": "second"}, (None, "second")),
        ({"error_message": "first", "fail_reason": "second", "failure_reason": "third"}, (None, "first")),
        # The error field wins over the aliases.
        ({"error": "from error", "fail_reason": "from alias"}, (None, "from error")),
        # An error object with only a code borrows its message from an alias.
        ({"error": {"code": "E1"}, "fail_reason": "why"}, ("E1", "why")),
        # A top-level code accompanies an alias message, if it is a str or an int.
        ({"error_message": "bad prompt", "code": "invalid_prompt"}, ("invalid_prompt", "bad prompt")),
        ({"fail_reason": "bad prompt", "code": 4001}, ("4001", "bad prompt")),
        ({"fail_reason": "bad prompt", "code": 0}, (None, "bad prompt")),
        ({"fail_reason": "bad prompt", "code": 1.5}, (None, "bad prompt")),
        ({"fail_reason": "bad prompt", "code": ["x"]}, (None, "bad prompt")),
        ({"error": {"code": "E1"}, "fail_reason": "why", "code": "top"}, ("E1", "why")),
        # ...but not on its own, nor beside an error object's message.
        ({"code": "invalid_prompt"}, (None, None)),
        ({"error": {"message": "m"}, "code": "top"}, (None, "m")),
        # A top-level message is an error only when the status says failed.
        ({"status": "failed", "message": "quota exceeded"}, (None, "quota exceeded")),
        ({"status": " CANCELLED ", "message": "by user", "code": "cancel"}, ("cancel", "by user")),
        ({"status": "completed", "message": "ok"}, (None, None)),
        ({"status": "running", "message": "rendering frame 30"}, (None, None)),
        ({"status": "mystery", "message": "what"}, (None, None)),
        ({"message": "what"}, (None, None)),
        ({"status": "failed", "fail_reason": "alias first", "message": "chatter"}, (None, "alias first")),
        ({}, (None, None)),
    ],
)
def test_find_error(payload: dict[str, Any], expected: tuple[str | None, str | None]) -> None:
    assert find_error(payload) == expected
    snapshot = normalize(payload)
    assert (snapshot.error_code, snapshot.error_message) == expected


def test_error_text_is_cleaned_and_truncated() -> None:
    code, message = find_error({"error": {"code": "c" * 150, "message": "line1\r\n\x00line2\t" + "m" * 3000}})
    assert code == "c" * 100
    assert message is not None
    assert message.startswith("line1\nline2\t")
    assert len(message) == 2000
    assert "\x00" not in message
    assert "\r" not in message


def test_error_code_is_single_line() -> None:
    code, _ = find_error({"error": {"code": "bad\ncode\x07", "message": "m"}})
    assert code == "bad code"


# --- url -----------------------------------------------------------------------------------

GOOD = "https://cdn.example.com/v.mp4"

URL_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("url", {"url": GOOD}),
    ("video_url", {"video_url": GOOD}),
    ("output_url", {"output_url": GOOD}),
    ("download_url", {"download_url": GOOD}),
    ("content_url", {"content_url": GOOD}),
    ("metadata.url", {"metadata": {"url": GOOD}}),
    ("outputs.video_url", {"outputs": {"video_url": GOOD}}),
    ("unsigned_urls[0]", {"unsigned_urls": [GOOD, "https://other.example/2.mp4"]}),
    ("content[0].url", {"content": [{"url": GOOD}, {"url": "https://other.example/2.mp4"}]}),
    ("output[0].url", {"output": [{"url": GOOD}]}),
    ("video.url", {"video": {"url": GOOD}}),
]


@pytest.mark.parametrize(("name", "payload"), URL_FIELDS, ids=[name for name, _ in URL_FIELDS])
def test_each_url_field_alone(name: str, payload: dict[str, Any]) -> None:
    assert find_url(payload) == GOOD
    assert normalize(payload).url == GOOD


def _url_payload(index: int, value: Any) -> dict[str, Any]:
    """The payload of URL_FIELDS[index] with its URL replaced by value."""
    name = URL_FIELDS[index][0]
    links = {
        "metadata.url": lambda v: {"metadata": {"url": v}},
        "outputs.video_url": lambda v: {"outputs": {"video_url": v}},
        "unsigned_urls[0]": lambda v: {"unsigned_urls": [v]},
        "content[0].url": lambda v: {"content": [{"url": v}]},
        "output[0].url": lambda v: {"output": [{"url": v}]},
        "video.url": lambda v: {"video": {"url": v}},
    }
    return links[name](value) if name in links else {name: value}


@pytest.mark.parametrize("winner", range(len(URL_FIELDS)), ids=[name for name, _ in URL_FIELDS])
@pytest.mark.parametrize("spoiler", ["", None, "javascript:alert(1)", "/relative/v.mp4", "ftp://x.example/v"])
def test_url_order(winner: int, spoiler: Any) -> None:
    """Every earlier field is unusable, the winner is good, every later field is also good."""
    payload: dict[str, Any] = {}
    for index in range(len(URL_FIELDS)):
        if index < winner:
            value = spoiler
        elif index == winner:
            value = f"https://cdn.example.com/{index}.mp4"
        else:
            value = f"https://later.example.com/{index}.mp4"
        # Fields sharing a container (none do today) would overwrite each other; fail loudly.
        part = _url_payload(index, value)
        assert not set(part) & set(payload)
        payload.update(part)
    assert find_url(payload) == f"https://cdn.example.com/{winner}.mp4"


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        " javascript://example.com/%0aalert(1)",
        "data:video/mp4;base64,AAAA",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "ftp://files.example.com/v.mp4",
        "/videos/v.mp4",
        "v.mp4",
        "//cdn.example.com/v.mp4",
        "http://",
        "https:///path-only",
        "https:cdn.example.com/v.mp4",
        "http://[::1",
        "https://cdn.example.com/a b.mp4",
        "https://cdn.example.com/a\tb.mp4",
        "https://cdn.example.com/a\nb.mp4",
        "https://cdn.example.com/\x00.mp4",
        "https://cdn.example.com/\x7f.mp4",
        "https://cdn.example.com/\u202egpj.mp4",
        "https://cdn.example.com/\u00a0.mp4",
        "https://cdn.example.com/" + "a" * 2100,
        "",
        "   ",
        123,
        True,
        ["https://cdn.example.com/v.mp4"],
        {"href": "https://cdn.example.com/v.mp4"},
    ],
)
def test_unusable_urls_are_skipped(value: Any) -> None:
    assert find_url({"url": value}) is None
    # ...and do not block a good one further down.
    assert find_url({"url": value, "video": {"url": GOOD}}) == GOOD


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  https://cdn.example.com/v.mp4\n", "https://cdn.example.com/v.mp4"),
        ("HTTPS://CDN.example.com/v.mp4", "HTTPS://CDN.example.com/v.mp4"),
        ("http://127.0.0.1:8000/v.mp4?sig=a%2Bb&e=1", "http://127.0.0.1:8000/v.mp4?sig=a%2Bb&e=1"),
        ("http://[::1]:8000/v.mp4", "http://[::1]:8000/v.mp4"),
        ("https://vidéo.example/v.mp4", "https://vidéo.example/v.mp4"),
        ("https://cdn.example.com/" + "a" * 2000, "https://cdn.example.com/" + "a" * 2000),
    ],
)
def test_usable_urls(value: str, expected: str) -> None:
    assert find_url({"url": value}) == expected
    assert len(expected) <= 2048


@pytest.mark.parametrize(
    "payload",
    [
        {"unsigned_urls": []},
        {"unsigned_urls": "https://cdn.example.com/v.mp4"},
        {"unsigned_urls": [None, GOOD]},
        {"content": {"url": GOOD}},
        {"content": [GOOD]},
        {"content": []},
        {"output": GOOD},
        {"output": [[{"url": GOOD}]]},
        {"outputs": [{"video_url": GOOD}]},
        {"metadata": "https://cdn.example.com/v.mp4"},
        {"video": GOOD},
        {"video": [{"url": GOOD}]},
    ],
)
def test_url_containers_of_the_wrong_shape_are_skipped(payload: dict[str, Any]) -> None:
    # Only the first entry of a list counts, and only the listed shapes.
    assert find_url(payload) is None


# --- ids, metadata -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("video_other", "video_other"),
        ("task/with+odd=chars", "task/with+odd=chars"),
        (12345, "12345"),
        ("", None),
        (None, None),
        (True, None),
        ({"id": 1}, None),
        ("i" * 300, "i" * 255),
    ],
)
def test_remote_id_is_informational(value: Any, expected: str | None) -> None:
    snapshot = normalize({"id": value, "status": "completed", "url": GOOD})
    assert snapshot.remote_id == expected
    # A differing id changes nothing else about the answer.
    assert (snapshot.status, snapshot.url) == ("completed", GOOD)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"prompt": "a cat", "n": 1}, {"prompt": "a cat", "n": 1}),
        ({}, {}),
        ("a cat", None),
        (["a"], None),
        (None, None),
        (42, None),
    ],
)
def test_metadata_is_dict_only(value: Any, expected: dict[str, Any] | None) -> None:
    assert normalize({"metadata": value}).metadata == expected


def test_metadata_is_a_copy() -> None:
    original = {"prompt": "a cat"}
    snapshot = normalize({"metadata": original})
    assert snapshot.metadata == original
    assert snapshot.metadata is not original


# --- whole payloads ------------------------------------------------------------------------


def test_openai_shaped_completed_payload() -> None:
    snapshot = normalize(
        {
            "id": "video_68d7512d07848190b3e45da0ecbebcde004da08e1e0678d5",
            "object": "video",
            "created_at": 1758941485,
            "status": "completed",
            "model": "sora-2-pro",
            "progress": 100,
            "seconds": "8",
            "size": "1280x720",
            "completed_at": 1758941600,
            "expires_at": 1759027885,
            "error": None,
            "remixed_from_video_id": None,
        }
    )
    assert snapshot == Snapshot(
        status="completed",
        raw_status="completed",
        progress=100,
        model="sora-2-pro",
        seconds=Decimal(8),
        size="1280x720",
        url=None,
        error_code=None,
        error_message=None,
        remote_created_at=datetime.fromtimestamp(1758941485, UTC),
        completed_at=datetime.fromtimestamp(1758941600, UTC),
        expires_at=datetime.fromtimestamp(1759027885, UTC),
        metadata=None,
        remote_id="video_68d7512d07848190b3e45da0ecbebcde004da08e1e0678d5",
    )


def test_hostile_payload_yields_plain_strings_and_no_javascript_url() -> None:
    snapshot = normalize(
        {
            "id": '"><img src=x onerror=alert(1)>',
            "status": "<b>failed</b>",
            "model": "<script>alert(1)</script>",
            "size": "onerror=alert(1)",
            "url": "javascript:alert(1)",
            "video_url": " JAVASCRIPT:alert(1)",
            "error": {"message": "<script>alert(1)</script>", "code": "<img onerror=x>"},
        }
    )
    # Text is kept verbatim (escaping is the template's job), never turned into markup or a link.
    assert snapshot.error_message == "<script>alert(1)</script>"
    assert snapshot.error_code == "<img onerror=x>"
    assert snapshot.model == "<script>alert(1)</script>"
    assert snapshot.size == "onerror=alert(1)"
    assert snapshot.remote_id == '"><img src=x onerror=alert(1)>'
    assert snapshot.url is None
    # "<b>failed</b>" is an unknown word, not a missing one, so the error beside it does not
    # decide the status.
    assert snapshot.status is None
    assert snapshot.raw_status == "<b>failed</b>"
    for value in (snapshot.error_message, snapshot.error_code, snapshot.model, snapshot.size):
        assert type(value) is str


def test_control_characters_and_surrogates_are_stripped_from_text() -> None:
    snapshot = normalize(
        {
            "status": "fa\x00iled\ud800",
            "model": "so\x1bra\ud83d",
            "error": {"message": "a\x00b\nc\x08d\udfff", "code": "e\x00f"},
        }
    )
    assert snapshot.raw_status == "failed"
    assert snapshot.model == "sora"
    assert snapshot.error_message == "ab\ncd"
    assert snapshot.error_code == "ef"
    for text in (snapshot.raw_status, snapshot.model, snapshot.error_message, snapshot.error_code):
        assert text is not None
        text.encode("utf-8")  # would raise on a lone surrogate


@pytest.mark.parametrize("payload", [{}, [], "text", None, 42])
def test_empty_or_non_dict_payload(payload: Any) -> None:
    snapshot = normalize(payload)
    assert snapshot.status is None
    assert snapshot.raw_status == ""
    assert snapshot.url is None


# --- robustness ----------------------------------------------------------------------------

KNOWN_KEYS = [
    "id",
    "status",
    "progress",
    "model",
    "seconds",
    "duration",
    "size",
    "resolution",
    "url",
    "video_url",
    "output_url",
    "download_url",
    "content_url",
    "metadata",
    "outputs",
    "unsigned_urls",
    "content",
    "output",
    "video",
    "error",
    "error_message",
    "fail_reason",
    "failure_reason",
    "message",
    "code",
    "created_at",
    "created",
    "completed_at",
    "finished_at",
    "expires_at",
    "data",
]

WEIRD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    10**400,
    -(10**400),
    10**5000,
    0.5,
    -0.0,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    Decimal("sNaN"),
    Decimal("1e999999999"),
    "",
    " ",
    "\x00",
    "\ud800",
    "x" * 100_000,
    "9" * 5000,
    "1e400",
    "nan",
    "-1",
    "💥 ünïcødé \u202e",
    "<script>alert(1)</script>",
    "javascript:alert(1)",
    "http://[::1",
    [],
    [None],
    [[[]]],
    ["https://ok.example/v.mp4"],
    [{"url": 10**400}],
    {},
    {"message": 10**400, "code": float("nan")},
    {"url": ["x"], "video_url": {"a": 1}},
    {"data": {"data": {"status": None}}},
]


def _assert_well_typed(snapshot: Snapshot) -> None:
    assert snapshot.status in (None, "pending", "processing", "completed", "failed")
    assert type(snapshot.raw_status) is str
    assert len(snapshot.raw_status) <= 64
    assert snapshot.progress is None or (type(snapshot.progress) is int and 0 <= snapshot.progress <= 100)
    if snapshot.status == "completed":
        assert snapshot.progress == 100
    assert snapshot.seconds is None or (
        isinstance(snapshot.seconds, Decimal)
        and snapshot.seconds.is_finite()
        and 0 < snapshot.seconds <= 100000
    )
    for value, limit in (
        (snapshot.model, 100),
        (snapshot.size, 32),
        (snapshot.url, 2048),
        (snapshot.error_code, 100),
        (snapshot.error_message, 2000),
    ):
        assert value is None or (type(value) is str and 0 < len(value) <= limit)
        if value is not None:
            assert "\x00" not in value
            value.encode("utf-8")
    assert snapshot.url is None or snapshot.url.lower().startswith(("http://", "https://"))
    for moment in (snapshot.remote_created_at, snapshot.completed_at, snapshot.expires_at):
        assert moment is None or moment.utcoffset() == timedelta(0)
    if snapshot.status not in ("completed", "failed"):
        assert snapshot.completed_at is None
    assert snapshot.metadata is None or type(snapshot.metadata) is dict


@pytest.mark.parametrize("key", KNOWN_KEYS)
def test_weird_values_never_raise(key: str) -> None:
    for value in WEIRD_VALUES:
        for base in ({}, {"status": "completed"}, {"status": "failed"}):
            _assert_well_typed(normalize({**base, key: value}))
            # The same value one level down, where gateways nest things.
            _assert_well_typed(normalize({**base, key: {"url": value, "message": value, "code": value}}))
            _assert_well_typed(normalize({"data": {**base, key: value}}))


@pytest.mark.parametrize("key", ["progress", "created_at", "seconds", "status", "error", "url"])
def test_weird_value_pairs_never_raise(key: str) -> None:
    # Pairs catch interactions, e.g. a strange status deciding how a strange message is read.
    for first, second in itertools.product(WEIRD_VALUES[:20], repeat=2):
        _assert_well_typed(normalize({"status": first, key: second, "message": first}))


@pytest.mark.parametrize(
    "parser",
    [canonical_status, parse_progress, parse_timestamp, parse_seconds],
)
def test_parsers_never_raise(parser: Any) -> None:
    for value in WEIRD_VALUES:
        parser(value)


def test_finders_never_raise_on_weird_nesting() -> None:
    for value in WEIRD_VALUES:
        for key in KNOWN_KEYS:
            payload = {key: value, "status": "failed"}
            code, message = find_error(payload)
            assert code is None or type(code) is str
            assert message is None or type(message) is str
            url = find_url(payload)
            assert url is None or url == "https://ok.example/v.mp4"


def test_storable_json_strips_what_postgresql_refuses():
    from videos.normalize import storable_json

    cleaned = storable_json({"a\x00": "b\x00c", "n": [float("nan"), "\ud800x", {"k": 1, "ok": True}]})
    assert cleaned == {"a": "bc", "n": [None, "x", {"k": 1, "ok": True}]}


def test_storable_json_cuts_absurd_nesting():
    from videos.normalize import JSON_DEPTH_MAX, storable_json

    deep: list = []
    node = deep
    for _ in range(JSON_DEPTH_MAX * 2):
        node.append([])
        node = node[0]
    cleaned = storable_json(deep)
    depth = 0
    while isinstance(cleaned, list) and cleaned:
        cleaned = cleaned[0]
        depth += 1
    assert depth <= JSON_DEPTH_MAX
