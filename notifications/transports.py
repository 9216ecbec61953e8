"""Sending one event to one channel: the payload of each kind, and the one way it goes out.

Every HTTP delivery goes through videos.safe_fetch.SafeFetcher.post: the target's address
is vetted at send time (no private, loopback or link-local address unless the host is in
VIDEO_FETCH_ALLOW_HOSTS), the connection is pinned to the vetted address, redirects are
not followed, connect within 5 s and the answer within 10 s. Email goes through Django's
email framework. Outcomes are short display strings without the URL (it embeds a token).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from notifications.models import Event, NotificationChannel
from notifications.signing import sign
from videos.safe_fetch import FetchError, SafeFetcher, host_allowed

CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 10.0

Kind = NotificationChannel.Kind


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str = ""
    duration_ms: int = 0


def payload(channel: NotificationChannel, event: Event, now: datetime) -> dict[str, Any]:
    """The JSON body for an HTTP channel."""
    text = event.text
    if channel.kind == Kind.SLACK:
        return {"text": text}
    if channel.kind == Kind.DISCORD:
        # Discord would ping @everyone if a label said so: mentions are off.
        return {"content": text[:2000], "allowed_mentions": {"parse": []}}
    if channel.kind == Kind.TEAMS:
        card: dict[str, Any] = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [{"type": "TextBlock", "text": text, "wrap": True}],
        }
        if url := event.data.get("url"):
            card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the task", "url": url}]
        return {
            "type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
        }
    # Standard Webhooks' suggested shape: type, timestamp, data.
    return {
        "type": event.kind,
        "timestamp": event.created_at.isoformat(),
        "data": {**event.data, "id": event.event_id, "text": text},
    }


def send(channel: NotificationChannel, event: Event, now: datetime) -> Outcome:
    started = time.monotonic()
    outcome = _send_email(channel, event) if channel.kind == Kind.EMAIL else _post(channel, event, now)
    return Outcome(outcome.ok, outcome.status_code, outcome.error, int((time.monotonic() - started) * 1000))


def _send_email(channel: NotificationChannel, event: Event) -> Outcome:
    recipients = [address.strip() for address in channel.target.split(",") if address.strip()]
    subject = event.text.split(" — ", 1)[0][:150]
    try:
        send_mail(subject, event.text, None, recipients)
    except Exception as error:  # SMTP, DNS, TLS: every kind of failure is the channel's
        return Outcome(False, error=f"Email could not be sent ({type(error).__name__}).")
    return Outcome(True)


def _post(channel: NotificationChannel, event: Event, now: datetime) -> Outcome:
    url = channel.target
    body = json.dumps(payload(channel, event, now), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if channel.kind == Kind.WEBHOOK:
        timestamp = int(now.timestamp())
        headers.update(
            {
                "webhook-id": event.event_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(channel.signing_secret, event.event_id, timestamp, body),
            }
        )
    # A self-hosted receiver on a private network or loopback: only when the operator lists it.
    trusted = [url] if host_allowed(url, settings.VIDEO_FETCH_ALLOW_HOSTS) else []
    fetcher = SafeFetcher(
        trusted_origins=trusted,
        deadline=TOTAL_TIMEOUT,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=TOTAL_TIMEOUT,
        headers_timeout=TOTAL_TIMEOUT,
        max_redirects=0,
    )
    try:
        status = fetcher.post(url, body, headers=headers)
    except FetchError as error:
        return Outcome(False, status_code=error.status_code, error=error.reason[:300])
    if 200 <= status < 300:
        return Outcome(True, status_code=status)
    if 300 <= status < 400:
        return Outcome(False, status_code=status, error=f"HTTP {status}: a redirect, which is not followed.")
    return Outcome(False, status_code=status, error=f"HTTP {status}")
