"""Keep secrets (provider keys, later API keys) out of every string we store, show or log.

Providers echo the key back: "Incorrect API key provided: sk-...", a metadata field, an
error code. So whatever a provider sends passes through a `Scrubber` before any of it is
read, cut to a column's length, stored, shown or logged. The rule:

- every occurrence of each secret is replaced with MARKER, and so are its percent-encoded
  and JSON-escaped forms;
- so is every piece of them at least MIN_PIECE characters long, wherever it stands: a
  provider (or our own truncation) that cut the key in half still showed half of it;
- a secret shorter than MIN_PIECE is only matched whole.

Scrubbing comes before truncating, always, and before the characters normalize drops are
dropped: removing them could otherwise join two harmless halves back into the key.
Text without a secret comes back unchanged (the same object).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

from django.conf import settings

from videos.normalize import _UNSAFE_CHARS

MARKER = "[key]"
# The shortest piece of a secret that is scrubbed. Eight random characters of a key carry
# about 48 bits, enough to matter and to be a key's recognisable head; shorter pieces of a
# real key (a 3-character prefix like "sk-" or "ey") are shared by every key of a vendor and
# by ordinary words, so matching them would scrub innocent text and protect nothing.
MIN_PIECE = 8
# The quick check looks for short needles sampled from each form every STRIDE characters:
# any MIN_PIECE-long piece of a form holds one of them whole.
NEEDLE = 4
STRIDE = MIN_PIECE - NEEDLE + 1
# Deeper than any real payload (normalize keeps 32 levels); a deeper value holding a
# secret is dropped rather than followed.
MAX_DEPTH = 64

_TRACEBACKS = logging.Formatter()


def _has_unsafe(text: str) -> bool:
    # isprintable() is false for every character normalize drops, and far quicker than the
    # regular expression on the usual text that has none.
    return not text.isprintable() and _UNSAFE_CHARS.search(text) is not None


def _forms(secret: str) -> set[str]:
    """The secret as it may appear in text: as is, percent-encoded (a query value, a path
    segment, a form field) and JSON-escaped (a body quoted inside a message)."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret, safe="")}
    for ascii_only in (True, False):
        escaped = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        forms |= {escaped, escaped.replace("/", "\\/")}
    return forms


class Scrubber:
    """Replaces the given secrets, their encodings and their pieces with MARKER.

    Built once per set of secrets (see `scrubber_for`): construction precomputes every
    MIN_PIECE-long window of every form, so scrubbing is a few substring searches when no
    secret is there, and a scan of the candidate runs when one may be.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {form for secret in secrets if secret for form in _forms(secret)}
        long_forms = [form for form in forms if len(form) >= MIN_PIECE]
        short_forms = sorted((form for form in forms if len(form) < MIN_PIECE), key=len, reverse=True)
        self._windows = frozenset(
            form[i : i + MIN_PIECE] for form in long_forms for i in range(len(form) - MIN_PIECE + 1)
        )
        self._needles = tuple(
            {form[i : i + NEEDLE] for form in long_forms for i in range(0, len(form) - NEEDLE + 1, STRIDE)}
            | set(short_forms)
        )
        self._shortest = min((len(needle) for needle in self._needles), default=0)
        # Every window lies inside a run of characters that occur in windows: only those
        # runs are scanned.
        chars = "".join(sorted({ch for window in self._windows for ch in window}))
        self._runs = re.compile(f"[{re.escape(chars)}]{{{MIN_PIECE},}}") if chars else None
        self._exact = re.compile("|".join(map(re.escape, short_forms))) if short_forms else None

    def __bool__(self) -> bool:
        return bool(self._needles)

    def text(self, text: str) -> str:
        """`text` with every secret and piece of one replaced; unchanged when it holds none."""
        if not self._needles or len(text) < self._shortest:
            return text
        # What normalize drops before storing is dropped here first, so it cannot hide a key
        # that dropping it would put back together.
        seen = _UNSAFE_CHARS.sub("", text) if _has_unsafe(text) else text
        spans = self._spans(seen) if self._may_hold(seen) else []
        return self._replace(seen, spans) if spans else text

    def value(self, value: Any) -> Any:
        """A JSON-like value (dicts, lists, strings; keys too) with every string scrubbed.

        Returns `value` itself when no string in it holds a secret, which one serialisation
        and a few substring searches tell: the poller's common case.
        """
        if not self._needles:
            return value
        try:
            blob = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            blob = None
        # With no backslash, json.dumps escaped nothing: every string (and key) stands in
        # the blob as it is, so what is not in the blob is in none of them.
        if blob is not None and "\\" not in blob and not self._may_hold(blob) and not _has_unsafe(blob):
            return value
        return self._walk(value, 0)

    def _walk(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if depth >= MAX_DEPTH:
            return None
        if isinstance(value, dict):
            return {
                self.text(k) if isinstance(k, str) else k: self._walk(v, depth + 1) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._walk(item, depth + 1) for item in value]
        return value

    def _may_hold(self, text: str) -> bool:
        return any(needle in text for needle in self._needles)

    def _replace(self, text: str, spans: list[list[int]]) -> str:
        parts, last = [], 0
        for start, end in spans:
            parts += [text[last:start], MARKER]
            last = end
        parts.append(text[last:])
        return "".join(parts)

    def _spans(self, text: str) -> list[list[int]]:
        """The stretches of `text` covered by windows of a secret, merged, in order."""
        found: list[tuple[int, int]] = []
        if self._runs is not None:
            windows = self._windows
            for run in self._runs.finditer(text):
                start, end = run.span()
                found += [
                    (i, i + MIN_PIECE)
                    for i in range(start, end - MIN_PIECE + 1)
                    if text[i : i + MIN_PIECE] in windows
                ]
        if self._exact is not None:
            found += [match.span() for match in self._exact.finditer(text)]
        merged: list[list[int]] = []
        for start, end in sorted(found):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return merged


@lru_cache(maxsize=64)
def scrubber_for(*secrets: str) -> Scrubber:
    """The scrubber for exactly these secrets, built once."""
    return Scrubber(secrets)


def configured_secrets() -> tuple[str, ...]:
    """The secrets in force for this deployment: today the provider key from the settings."""
    return tuple(secret for secret in (getattr(settings, "VIDEO_API_KEY", ""),) if secret)


def scrubber(*extra: str) -> Scrubber:
    """The scrubber for the configured secrets plus `extra` (e.g. the key a client holds)."""
    return scrubber_for(*sorted({*configured_secrets(), *extra} - {""}))


def scrub(text: str, *extra: str) -> str:
    return scrubber(*extra).text(text)


def scrub_json(value: Any, *extra: str) -> Any:
    return scrubber(*extra).value(value)


class ScrubSecrets(logging.Filter):
    """A handler filter: the formatted message, the traceback and the stack of every record
    leave with the configured secrets scrubbed. Belt and braces: what the code logs is
    scrubbed already, but an exception's text or a third party's message may not be."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_text = scrubber()
        if not scrub_text:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it as it always does
            return True
        clean = scrub_text.text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_text.text(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub_text.text(record.stack_info)
        return True


__all__ = [
    "MARKER",
    "MIN_PIECE",
    "ScrubSecrets",
    "Scrubber",
    "configured_secrets",
    "scrub",
    "scrub_json",
    "scrubber",
    "scrubber_for",
]
