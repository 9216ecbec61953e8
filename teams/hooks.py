"""Verifying the events a provider pushes to a connection's webhook (/hooks/<token>/).

Two signature schemes, told apart by their headers:

- Standard Webhooks (OpenAI, Replicate, Svix and others): `webhook-id`,
  `webhook-timestamp`, `webhook-signature` (one or more space-separated `v1,<base64>`), the
  HMAC-SHA256 of `"{id}.{timestamp}.{raw body}"`. Its key is the base64-decoded part after
  `whsec_`; a secret without the prefix is base64-decoded too, as the spec's own libraries
  do, and used as its bytes only when it is not base64 at all (a gateway that lets you type
  any secret).
- OpenRouter: `X-OpenRouter-Signature: t=<unix>,v1=<hex>`, the HMAC-SHA256 of
  `"{t},{raw body}"` keyed with the secret as given; `X-OpenRouter-Idempotency-Key` names
  the event.

Pure functions of (secret, headers, body, now): nothing here touches the database, and no
message says anything about the secret or the expected signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from teams.models import HOOK_SECRET_PREFIX

# The largest body read, in bytes; a longer one is refused (413) unread.
MAX_BODY = 64 * 1024

# How far a signed timestamp may be from our clock, either way (the spec's 5 minutes).
TOLERANCE_SECONDS = 5 * 60

# A header offering more signatures than this is not worth checking one by one.
MAX_SIGNATURES = 16

# Event types that mean "this video finished, look now", whichever scheme carried them:
# OpenAI's (Standard Webhooks) and OpenRouter's.
TASK_EVENTS = frozenset(
    {
        "video.completed",
        "video.failed",
        "video.generation.completed",
        "video.generation.failed",
        "video.generation.cancelled",
        "video.generation.expired",
    }
)


class Refused(Exception):
    """An event not to act on; `status` is the HTTP answer, the message is safe to send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Verified:
    """An event whose signature checked out: its scheme, the provider's ID for it (what
    replays are recognised by) and the raw body it signed."""

    scheme: str
    event_id: str
    body: bytes


@dataclass(frozen=True)
class Event:
    """What a verified body says: its type, and the video it is about ("" when none)."""

    type: str
    video_id: str

    @property
    def is_about_a_task(self) -> bool:
        return self.type in TASK_EVENTS


def verify(secret: str, headers: Any, body: bytes, now: float) -> Verified:
    """The verified event, or Refused(401) for a missing, malformed, wrong or stale
    signature. `headers` is case-insensitive (Django's request.headers)."""
    if not secret:
        # Answered like any bad signature: the answer says nothing about the secret, not
        # even whether there is one (the view logs it for the operator).
        raise Refused(401, "Bad signature.")
    if headers.get("webhook-signature") is not None:
        return _verify_standard(secret, headers, body, now)
    if headers.get("x-openrouter-signature") is not None:
        return _verify_openrouter(secret, headers, body, now)
    raise Refused(401, "Missing signature: expected Standard Webhooks or OpenRouter signature headers.")


def standard_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (see the module's docstring)."""
    text = secret.removeprefix(HOOK_SECRET_PREFIX)
    try:
        # Padding added as the reference libraries do: some secrets come unpadded.
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    return key or secret.encode()


def standard_signature(secret: str, event_id: str, timestamp: str, body: bytes) -> str:
    """The `v1,<base64>` a Standard Webhooks sender puts in `webhook-signature`."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def openrouter_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `t=…,v1=…` OpenRouter puts in `X-OpenRouter-Signature`."""
    digest = hmac.new(secret.encode(), f"{timestamp},".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _check_time(raw: str, now: float) -> None:
    try:
        timestamp = int(raw.strip())
    except ValueError:
        raise Refused(401, "Invalid signature timestamp.") from None
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise Refused(401, "Stale event: its signed timestamp is more than 5 minutes away from now.")


def _verify_standard(secret: str, headers: Any, body: bytes, now: float) -> Verified:
    event_id = (headers.get("webhook-id") or "").strip()
    timestamp = (headers.get("webhook-timestamp") or "").strip()
    offered = (headers.get("webhook-signature") or "").split()
    if not event_id or not timestamp or not offered:
        raise Refused(
            401, "Missing signature: webhook-id, webhook-timestamp and webhook-signature are all needed."
        )
    if len(event_id) > 255 or not event_id.isprintable():
        raise Refused(401, "Invalid webhook-id.")
    _check_time(timestamp, now)
    expected = standard_signature(secret, event_id, timestamp, body).partition(",")[2].encode()
    for candidate in offered[:MAX_SIGNATURES]:
        version, _, signature = candidate.partition(",")
        # Other versions (v1a: asymmetric) are skipped, as the spec says.
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return Verified("standard-webhooks", event_id, body)
    raise Refused(401, "Bad signature.")


def _verify_openrouter(secret: str, headers: Any, body: bytes, now: float) -> Verified:
    parts: dict[str, list[str]] = {}
    for item in (headers.get("x-openrouter-signature") or "").split(",")[: MAX_SIGNATURES + 1]:
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value.strip())
    timestamps, offered = parts.get("t", []), parts.get("v1", [])
    if len(timestamps) != 1 or not offered:
        raise Refused(401, "Missing signature: X-OpenRouter-Signature needs t=<unix>,v1=<hex>.")
    timestamp = timestamps[0]
    _check_time(timestamp, now)
    expected = openrouter_signature(secret, timestamp, body).rpartition("v1=")[2].encode()
    if not any(hmac.compare_digest(signature.lower().encode(), expected) for signature in offered):
        raise Refused(401, "Bad signature.")
    # Without the provider's idempotency key, the signature itself names the event: a
    # byte-for-byte replay is then still recognised.
    event_id = (headers.get("x-openrouter-idempotency-key") or "").strip()[:255]
    if not event_id.isprintable():
        event_id = ""
    return Verified("openrouter", event_id or f"sig:{timestamp}:{offered[0][:64]}", body)


def parse(verified: Verified) -> Event:
    """What the body says; Refused(400) for a body that is not a JSON object, or a task
    event without a usable `data.id`."""
    try:
        payload = json.loads(verified.body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "The body is not JSON.") from None
    if not isinstance(payload, dict):
        raise Refused(400, "The body is not a JSON object.")
    kind = payload.get("type")
    kind = kind.strip() if isinstance(kind, str) else ""
    data = payload.get("data")
    video_id = data.get("id") if isinstance(data, dict) else None
    event = Event(kind, video_id.strip() if isinstance(video_id, str) else "")
    if event.is_about_a_task:
        from videos.client import InvalidTaskId, validate_task_id

        try:
            return Event(kind, validate_task_id(event.video_id))
        except InvalidTaskId as error:
            raise Refused(400, f"data.id: {error}") from None
    return event
