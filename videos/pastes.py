"""What a paste into "Track tasks" holds: task IDs, each with the line it came from.

People paste what they have at hand: a bare ID (with a label after it), the provider's
address of a video, a line of its JSON answer, or the whole answer. `read_paste` takes the
ID out of the addresses and JSON it recognises and refuses, with a reason, anything else
that still looks like an address, JSON or a sentence; tracked as an "ID", such a line
would only fail a minute later with "task not found". Pure functions: no Django, no I/O.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass
from enum import StrEnum
from itertools import accumulate
from typing import Any
from urllib.parse import unquote, urlsplit

from videos.client import InvalidTaskId, validate_task_id

# A label is free text but never longer than the column holding it.
MAX_LABEL = 200
# How much of a pasted line a refusal quotes back.
MAX_SHOWN = 60
# How many lines opening with "{" or "[" are tried as the start of a JSON value.
MAX_JSON_ATTEMPTS = 20

# Keys naming the task in a provider's JSON, most specific first: a video object's own "id";
# gateways that wrap providers answer with "task_id"; some answers only say "video_id".
ID_KEYS = ("id", "task_id", "video_id")
# After the ID in a `/videos/{id}` address: nothing, the file, or the remix endpoint.
ID_TAILS = ((), ("content",), ("remix",))

# Anything with a scheme ("https://", "ftp://"), or starting with "www.": an address.
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|www\.)", re.IGNORECASE)
# `"id": "video_abc",` with either quotes, inside a longer line too; the key must be the
# whole quoted word (`"remixed_from_video_id"` is not "video_id").
_JSON_ID = re.compile(r"""(?:^|[\s{,])["']?(id|task_id|video_id)["']?\s*:\s*["']([^"'\s]*)["']""")
# Characters no provider puts in an ID but JSON (and Python reprs) are made of.
_JSON_CHARS = set("{}[]\"'")
# A line's first word followed by a label, or alone.
_FIRST_WORD = re.compile(r"(\S+)(\s*)(.*)", re.DOTALL)
_DECODER = json.JSONDecoder()


class Source(StrEnum):
    """Where a tracked ID was read from; the panel says so when it was not typed as is."""

    ID = ""
    URL = "from a URL"
    JSON = "from JSON"


@dataclass(frozen=True)
class Found:
    """A task ID to track, the line(s) it came from and how it was read."""

    where: str
    pasted: str
    task_id: str
    label: str = ""
    source: Source = Source.ID


@dataclass(frozen=True)
class Refused:
    """A line that names no task, and why (a sentence for the person who pasted it)."""

    where: str
    pasted: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where} ({self.pasted!r}): {self.reason}"


def read_paste(text: str) -> tuple[list[Found], list[Refused]]:
    """Every task ID in `text` and every line that names none, in the order pasted.

    A JSON value (an object, an array, a list answer `{"data": [...]}`) spanning one line
    or many is read whole first; every other non-blank line is read on its own. Never raises.
    """
    found: list[Found] = []
    refused: list[Refused] = []
    lines = text.splitlines()
    joined = "\n".join(lines)
    starts = list(accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
    # Each failed attempt may read to the end of the text: a few are enough for any real
    # paste, and a hostile one of 25,000 "[" lines stays linear.
    attempts = MAX_JSON_ATTEMPTS
    number = 0
    while number < len(lines):
        line = lines[number].strip()
        if not line:
            number += 1
            continue
        block = None
        if line[0] in "{[" and attempts > 0:
            block = _json_block(joined, starts, number)
            attempts -= block is None
        if block is not None:
            value, last = block
            where = f"Line {number + 1}" if last == number else f"Lines {number + 1} to {last + 1}"
            # The value's start with its layout squeezed out: `{ "id": "video_…`, not `{`.
            opening = " ".join(joined[starts[number] : starts[number] + 4 * MAX_SHOWN].split())
            items, problems = _ids_in_json(value, where, _shown(opening))
            found += items
            refused += problems
            number = last + 1
            continue
        result = read_line(line, f"Line {number + 1}")
        (found if isinstance(result, Found) else refused).append(result)
        number += 1
    return found, refused


def read_line(line: str, where: str) -> Found | Refused:
    """One pasted line: an ID with an optional label after it, an address of the
    `/videos/{id}` family, or a JSON line naming the ID; anything else is refused."""
    line = line.strip()
    match = _FIRST_WORD.fullmatch(line)
    if match is None:
        return Refused(where, "", "the line is empty.")
    word, gap, rest = match.groups()
    pasted = _shown(line)
    if _URL.match(word) or (word.startswith("/") and "/videos/" in word):
        return _from_url(word, rest, where, pasted)
    # A trailing ":" or "," ends a key or a value of JSON, but "Hi," opens a sentence.
    if _JSON_CHARS & set(word) or word.endswith(":") or (word.endswith(",") and not word[:-1].isalpha()):
        key = _JSON_ID.search(line)
        if key is not None:
            return _checked(key.group(2), "", where, pasted, Source.JSON)
        return Refused(
            where,
            pasted,
            'this looks like a piece of JSON without the task\'s "id" (quotes, braces or a key '
            'ending in ":"): paste the line with "id", or the whole response.',
        )
    if _is_prose(word, gap, rest):
        hint = _id_like(rest)
        advice = f"put the ID ({hint}) first; a label may follow." if hint else "paste the task ID."
        return Refused(where, pasted, f"this looks like a sentence, not a task ID: {advice}")
    return _checked(word, rest, where, pasted, Source.ID)


def id_in_url(url: str) -> str | None:
    """The task ID in an address of the `/videos/{id}` family (with or without a version
    prefix, optionally followed by `/content` or `/remix`, any query or fragment), decoded
    from its percent-encoding; None for any other address. Not yet validated."""
    if url[:4].lower() == "www.":
        url = "//" + url
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    segments = path.split("/")
    # A ".." or "." anywhere in the address: a server would resolve it to some other
    # path, so the address does not say which video it means.
    if any(unquote(segment) in (".", "..") for segment in segments[:-1]):
        return None
    if segments and segments[-1] == "":
        segments = segments[:-1]  # a trailing slash
    for index in range(len(segments) - 2, -1, -1):
        if segments[index] == "videos" and tuple(segments[index + 2 :]) in ID_TAILS:
            return unquote(segments[index + 1], errors="strict")
    return None


def _from_url(word: str, rest: str, where: str, pasted: str) -> Found | Refused:
    try:
        task_id = id_in_url(word)
    except UnicodeDecodeError:
        task_id = None
    if task_id is None:
        return Refused(
            where,
            pasted,
            "this is a web address, not a task ID; only a video's own address (…/videos/ID, "
            "optionally followed by /content or /remix) names a task.",
        )
    if any(part in (".", "..") for part in task_id.split("/")):
        return Refused(where, pasted, "the ID in this address has a '..' or '.' part; no task has one.")
    return _checked(task_id, rest, where, pasted, Source.URL)


def _checked(task_id: str, rest: str, where: str, pasted: str, source: Source) -> Found | Refused:
    try:
        task_id = validate_task_id(task_id)
    except InvalidTaskId as error:
        return Refused(where, pasted, str(error))
    return Found(where, pasted, task_id, _label(rest), source)


def _label(text: str) -> str:
    # Labels are free text, but control characters (NUL above all, which PostgreSQL
    # refuses) have no place in one.
    return "".join(ch for ch in text if ch.isprintable()).strip()[:MAX_LABEL]


def _is_prose(word: str, gap: str, rest: str) -> bool:
    """A sentence: it opens with an ordinary word and goes on in single spaces. An ID with a
    label is set apart by two spaces or a tab (as the form's example shows) or the ID is not
    a plain word (it holds a digit, "_", "-"…); both stay IDs."""
    if gap != " " or not word.rstrip(",.;:!?").isalpha():
        return False
    return len(rest.split()) >= 2 or word[-1] in ",.;:!?"


def _id_like(text: str) -> str:
    """The first word of `text` that could be a task ID (letters with digits or "_"), for a hint."""
    for word in text.split():
        word = word.strip("\"'.,;:!?()")
        if re.fullmatch(r"[A-Za-z0-9][\w.+/=-]{3,}", word) and re.search(r"[\d_]", word):
            return word
    return ""


def _json_block(text: str, starts: list[int], start: int) -> tuple[Any, int] | None:
    """The JSON value beginning on line `start` of `text` (whose lines begin at `starts`)
    and the line it ends on, if one begins there and ends its line."""
    offset = starts[start]
    offset += len(text[offset:]) - len(text[offset:].lstrip())
    try:
        value, end = _DECODER.raw_decode(text, offset)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past Python's stack
        return None
    # The value must end its line: `{"a": 1} video_x` is not a JSON paste.
    if text[end:].split("\n", 1)[0].strip().rstrip(","):
        return None
    if not isinstance(value, dict | list):
        return None
    return value, bisect_right(starts, end - 1) - 1


def _ids_in_json(value: Any, where: str, pasted: str) -> tuple[list[Found], list[Refused]]:
    """The task IDs of a pasted JSON value: an object's own ID, each item's of a list answer
    (`{"object": "list", "data": [...]}`) or of an array."""
    if isinstance(value, dict) and isinstance(value.get("data"), list) and not _json_id(value):
        items = value["data"]
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    found: list[Found] = []
    refused: list[Refused] = []
    for position, item in enumerate(items, start=1):
        place = f"{where}, item {position}" if len(items) > 1 else where
        task_id = _json_id(item) if isinstance(item, dict) else item if isinstance(item, str) else None
        if task_id is None:
            refused.append(Refused(place, pasted, 'this JSON names no task ("id", "task_id" or "video_id").'))
            continue
        result = _checked(task_id, "", place, pasted, Source.JSON)
        (found if isinstance(result, Found) else refused).append(result)
    if not items:
        refused.append(Refused(where, pasted, "this JSON list is empty."))
    return found, refused


def _json_id(item: dict) -> str | None:
    for key in ID_KEYS:
        if isinstance(item.get(key), str):
            return item[key]
    return None


def _shown(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"
