"""Turn one provider answer to `GET /videos/{id}` into the dashboard's canonical fields.

Pure: no database, no HTTP, no settings. Gateways disagree about almost every field
(docs/providers.md, "Task objects", lists what they send), so every reader here accepts
the shapes seen in the wild, returns None for anything else, and never raises: a hostile or
broken payload must cost one poll, not the worker.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

# The same values as models.Status, kept as plain strings so this module imports without Django.
PENDING = "pending"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
TERMINAL = (COMPLETED, FAILED)

STATUS_WORDS: dict[str, str] = {
    **dict.fromkeys(
        (
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
        ),
        PENDING,
    ),
    **dict.fromkeys(
        ("in_progress", "processing", "running", "generating", "dreaming", "rendering", "started"),
        PROCESSING,
    ),
    **dict.fromkeys(
        ("completed", "succeeded", "success", "succeed", "done", "complete", "finished"),
        COMPLETED,
    ),
    **dict.fromkeys(
        ("failed", "failure", "error", "cancelled", "canceled", "expired", "rejected", "timeout", "fail"),
        FAILED,
    ),
}

# Limits match the columns of models.VideoTask, so a snapshot always fits when saved.
RAW_STATUS_MAX = 64
MODEL_MAX = 100
SIZE_MAX = 32
URL_MAX = 2048
ERROR_CODE_MAX = 100
ERROR_MESSAGE_MAX = 2000
REMOTE_ID_MAX = 255
# No real clip lasts a day; a bigger number is a unit mix-up (ms?) and would overflow the column.
SECONDS_MAX = Decimal(100000)
# Numbers arrive as short strings; refusing long ones keeps parsing cheap on hostile input.
NUMBER_TEXT_MAX = 64
# Unix timestamps above this are milliseconds: 1e12 seconds is past the year 30000.
MILLISECONDS_ABOVE = 10**12

URL_KEYS = ("url", "video_url", "output_url", "download_url", "content_url")

# Deeper than any real payload; json.loads accepts far more.
JSON_DEPTH_MAX = 32

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNSAFE_JSON_CHARS = re.compile("[\x00\ud800-\udfff]")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
# C0 controls except tab and newline, DEL, and lone surrogates: PostgreSQL rejects NUL and
# UTF-8 cannot encode a surrogate, so either would make saving the task fail.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class Snapshot:
    """What one provider answer says about a task, in canonical form.

    None means "the answer did not say": the task keeps what it had. `status` None covers
    an unknown or missing status word, whose raw text is still kept in `raw_status`.
    """

    status: str | None
    raw_status: str
    progress: int | None
    model: str | None
    seconds: Decimal | None
    size: str | None
    url: str | None
    error_code: str | None
    error_message: str | None
    remote_created_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None
    metadata: dict[str, Any] | None
    remote_id: str | None


def normalize(payload: Mapping[str, Any]) -> Snapshot:
    """Read one decoded JSON answer of `GET /videos/{id}`; never raises.

    Gateways that wrap the task in an envelope ({"code": 0, "message": "ok", "data": {...}})
    are unwrapped once: when the top level has a dict "data" but neither "status" nor "id",
    the task is "data". A task with its own status or id is read as it stands, even if it
    also carries a "data" field.
    """
    if not isinstance(payload, Mapping):
        payload = {}
    data = payload.get("data")
    if isinstance(data, Mapping) and payload.get("status") is None and payload.get("id") is None:
        payload = data

    raw = payload.get("status")
    status = canonical_status(raw)
    error_code, error_message = find_error(payload)
    if status is None and _is_blank(raw) and (error_code or error_message):
        status = FAILED

    progress = 100 if status == COMPLETED else parse_progress(payload.get("progress"))
    completed_at = None
    if status in TERMINAL:
        # Some gateways fill completed_at while the job still runs; only a terminal status
        # makes it true.
        completed_at = _first_timestamp(payload, "completed_at", "finished_at")
    seconds = parse_seconds(payload.get("seconds"))
    if seconds is None:
        seconds = parse_seconds(payload.get("duration"))
    metadata = payload.get("metadata")

    return Snapshot(
        status=status,
        raw_status=_raw_status(raw),
        progress=progress,
        model=_text(payload.get("model"), MODEL_MAX),
        seconds=seconds,
        size=_text(payload.get("size"), SIZE_MAX) or _text(payload.get("resolution"), SIZE_MAX),
        url=find_url(payload),
        error_code=error_code,
        error_message=error_message,
        remote_created_at=_first_timestamp(payload, "created_at", "created"),
        completed_at=completed_at,
        expires_at=parse_timestamp(payload.get("expires_at")),
        metadata=storable_json(dict(metadata)) if isinstance(metadata, Mapping) else None,
        remote_id=_text(payload.get("id"), REMOTE_ID_MAX),
    )


def storable_json(value: Any, depth: int = 0) -> Any:
    """`value` with every string (and key) stripped of what PostgreSQL's jsonb refuses.

    jsonb rejects "\\u0000" and UTF-8 cannot carry lone surrogates; one such character in a
    provider's payload would otherwise make every save of that task fail. Nesting deeper
    than any real payload is cut off rather than followed.
    """
    if isinstance(value, str):
        return _UNSAFE_JSON_CHARS.sub("", value)
    if depth >= JSON_DEPTH_MAX:
        return None
    if isinstance(value, Mapping):
        return {storable_json(str(k), depth): storable_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item, depth + 1) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def canonical_status(word: Any) -> str | None:
    """The canonical status for a provider's word, or None to keep the previous state."""
    if not isinstance(word, str):
        return None
    return STATUS_WORDS.get(word.strip().lower())


def parse_progress(value: Any) -> int | None:
    """A percentage 0..100 from an int, a float, "45", "45%" or a 0..1 fraction.

    Only a float, or a string with a decimal point, below 1 is a fraction: an int 1 or
    "1%" is 1 percent. Rounds half up, so 45.5 and "0.5%" both round away from zero.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return min(max(value, 0), 100)
    may_be_fraction = True
    if isinstance(value, str):
        text = value.strip()
        is_percent = text.endswith("%")
        if is_percent:
            text = text[:-1].rstrip()
        if len(text) > NUMBER_TEXT_MAX or not _NUMBER.fullmatch(text):
            return None
        may_be_fraction = not is_percent and "." in text
        number = float(text)
    elif isinstance(value, float | Decimal):
        try:
            number = float(value)
        except ValueError:  # Decimal("sNaN")
            return None
    else:
        return None
    if not math.isfinite(number):
        return None
    if may_be_fraction and 0 <= number < 1:
        number *= 100
    return math.floor(min(max(number, 0.0), 100.0) + 0.5)


def parse_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from Unix seconds or milliseconds, or an ISO-8601 string.

    0, "", negatives, the Go zero time (year 1), anything at or before the epoch, and
    dates a datetime cannot hold all mean "unset".
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _from_unix(value)
    if isinstance(value, float | Decimal):
        try:
            return _from_unix(float(value))
        except (ValueError, OverflowError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > NUMBER_TEXT_MAX:
        return None
    if _INTEGER.fullmatch(text):
        return _from_unix(int(text))
    if _NUMBER.fullmatch(text):
        return _from_unix(float(text))
    try:
        # Python 3.11 reads "Z", offsets, a space separator and fractions of any length;
        # upper-casing admits the lower-case "t" and "z" that RFC 3339 also allows.
        parsed = datetime.fromisoformat(text.upper())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        # Naive times from gateways are UTC in practice; the server's zone would be a guess.
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return parsed if parsed > _EPOCH else None


def parse_seconds(value: Any) -> Decimal | None:
    """A clip length from "8", "10.0", 10, 10.5 or "8s"; None for zero, negatives and garbage.

    Zero is "unset": Go gateways send 0 for fields they do not know, and it must not
    overwrite a length learnt earlier. "8s" is how protobuf's Duration reads in JSON.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        # Checked before Decimal() so a 400-digit int costs nothing.
        return Decimal(value) if 0 < value <= SECONDS_MAX else None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        # repr() gives 10.5 -> "10.5", not the binary expansion Decimal(10.5) would keep.
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if text[-1:] in ("s", "S"):
            text = text[:-1].rstrip()
        if len(text) > NUMBER_TEXT_MAX or not _NUMBER.fullmatch(text):
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
    else:
        return None
    if not number.is_finite() or not 0 < number <= SECONDS_MAX:
        return None
    return number


def find_url(payload: Mapping[str, Any]) -> str | None:
    """The first usable http(s) download link, in the order docs/providers.md lists the fields.

    Reads the mapping as given: normalize() has already taken a task out of its envelope.
    """
    for candidate in _url_candidates(payload):
        url = _http_url(candidate)
        if url is not None:
            return url
    return None


def find_error(payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(code, message) of the provider's error, each None when absent.

    The "error" field wins (an object with "message" and "code", or a plain string). Failing
    that, the message comes from "error_message", "fail_reason" or "failure_reason", and a
    top-level "code" rides along. A top-level "message" counts only when the status word is a
    failure: gateways also use it for chatter such as "ok" or "task is being processed".
    """
    code: str | None = None
    message: str | None = None
    error = payload.get("error")
    if isinstance(error, Mapping):
        message = _text(error.get("message"), ERROR_MESSAGE_MAX, multiline=True)
        code = _error_code(error.get("code"))
    elif isinstance(error, str):
        message = _text(error, ERROR_MESSAGE_MAX, multiline=True)
    if message is not None:
        return code, message

    keys = ["error_message", "fail_reason", "failure_reason"]
    if canonical_status(payload.get("status")) == FAILED:
        keys.append("message")
    for key in keys:
        message = _text(payload.get(key), ERROR_MESSAGE_MAX, multiline=True)
        if message is not None:
            return code or _error_code(payload.get("code")), message
    return code, None


def _url_candidates(payload: Mapping[str, Any]) -> Iterator[Any]:
    for key in URL_KEYS:
        yield payload.get(key)
    yield _field(payload.get("metadata"), "url")
    yield _field(payload.get("outputs"), "video_url")
    yield _first(payload.get("unsigned_urls"))
    yield _field(_first(payload.get("content")), "url")
    yield _field(_first(payload.get("output")), "url")
    yield _field(payload.get("video"), "url")


def _http_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or len(url) > URL_MAX:
        return None
    # Whitespace, controls, invisible format characters (bidi overrides) and surrogates have
    # no place in a link we render; a URL carrying them is broken or an attempt to spoof one.
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # for example an unclosed IPv6 bracket
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return url


def _field(container: Any, key: str) -> Any:
    return container.get(key) if isinstance(container, Mapping) else None


def _first(items: Any) -> Any:
    return items[0] if isinstance(items, list | tuple) and items else None


def _first_timestamp(payload: Mapping[str, Any], *keys: str) -> datetime | None:
    # An alias is read when the preferred key is missing or says "unset" (0, "").
    for key in keys:
        parsed = parse_timestamp(payload.get(key))
        if parsed is not None:
            return parsed
    return None


def _from_unix(number: int | float) -> datetime | None:
    # isfinite() only for floats: it would overflow converting a 400-digit int.
    if (isinstance(number, float) and not math.isfinite(number)) or number <= 0:
        return None
    try:
        if number > MILLISECONDS_ABOVE:
            return _EPOCH + timedelta(milliseconds=number)
        return _EPOCH + timedelta(seconds=number)
    except OverflowError:
        return None


def _is_blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _raw_status(raw: Any) -> str:
    # Kept for display even when the word is unknown, so an operator can see what came.
    if isinstance(raw, str):
        text = raw
    elif isinstance(raw, int | float):
        try:
            text = str(raw)
        except ValueError:  # an int past Python's limit on digits to print
            return ""
    else:
        return ""
    return _clean(text, RAW_STATUS_MAX, multiline=False)


def _error_code(value: Any) -> str | None:
    # Envelopes use code 0 for "no error"; it must not turn a task into a failure.
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return None
    return _text(value, ERROR_CODE_MAX)


def _text(value: Any, limit: int, *, multiline: bool = False) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            value = str(value)
        except ValueError:  # an int past Python's limit on digits to print
            return None
    if not isinstance(value, str):
        return None
    return _clean(value, limit, multiline=multiline) or None


def _clean(text: str, limit: int, *, multiline: bool) -> str:
    text = _UNSAFE_CHARS.sub("", text)
    if not multiline:
        text = text.replace("\t", " ").replace("\n", " ")
    return text.strip()[:limit].rstrip()
