"""What every outbound request shares: who we say we are, which CAs we trust, and what an
HTTP status means.

Two modules send requests: client.py (API calls to the provider, over a pooled requests
session) and safe_fetch.py (files from links someone else chose, over pinned connections).
Each turns an answer into its own error type, with its own wording, but both read the
status through `classify` here, so a status never means one thing to the poller and
another to the downloads.
"""

from __future__ import annotations

import enum
import os

import requests.certs

USER_AGENT = "video-task-dashboard/0.1"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def ca_bundle() -> str:
    """The CA bundle to verify TLS with: an operator's REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE
    (the variables requests honours), else certifi's. Read on each call, so a bundle
    configured after start-up (or by a test) applies to the next client or fetcher."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or requests.certs.where()


class Kind(enum.Enum):
    """What an error status says, and whether asking again later may work (`transient`)."""

    NOT_FOUND = "not found"
    DENIED = "denied"
    OUT_OF_QUOTA = "out of quota"
    RATE_LIMITED = "rate limited"
    UNAVAILABLE = "unavailable"
    REFUSED = "refused"

    @property
    def transient(self) -> bool:
        return self in (Kind.RATE_LIMITED, Kind.UNAVAILABLE)


def classify(status: int, code: str = "") -> Kind:
    """The kind of a non-2xx, non-redirect answer. `code` is the error body's `code`, when
    the caller has read one (the provider API's; a file server's body is not read)."""
    # Gateways answer an unknown task with 400 task_not_exist where others send 404, and
    # 410 says the same for good.
    if status in (404, 410) or (status == 400 and code == "task_not_exist"):
        return Kind.NOT_FOUND
    if status in (401, 403):
        return Kind.DENIED
    if status == 429:
        # Out of credit is no reason to slow down: waiting does not fix it.
        return Kind.OUT_OF_QUOTA if code == "insufficient_quota" else Kind.RATE_LIMITED
    # 408 is the server timing out on us, 409 and 425 ask to try again: as transient as a 5xx.
    if status >= 500 or status in (408, 409, 425):
        return Kind.UNAVAILABLE
    return Kind.REFUSED


__all__ = ["REDIRECT_STATUSES", "USER_AGENT", "Kind", "ca_bundle", "classify"]
