"""A connection's Test button: ask the provider something cheap (one page of one video from
its list) and say in plain words what happened.

Every outcome is a display string built here from the client's error types
(videos.client), never from a raw exception: the client's messages and the provider's
words in them are already scrubbed of the key, and nothing else reaches the page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django import forms

from dashboard.encryption import Unreadable
from teams.connection_forms import check_base_url
from teams.models import ProviderConnection
from videos.client import (
    AuthError,
    NotFound,
    PermanentError,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    TransientError,
    VideoAPIClient,
)

logger = logging.getLogger(__name__)

# A person is waiting on the page: a test gives up sooner than the worker's requests do.
TEST_TIMEOUT = 10.0
# The provider's own words shown under an outcome, at most.
DETAIL_LIMIT = 300


@dataclass(frozen=True)
class Outcome:
    """What a test found. `ok`: an OpenAI-compatible video API that took the key."""

    kind: str
    message: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "reached"


def run_test(connection: ProviderConnection) -> Outcome:
    """Test `connection` now: its stored key is readable, its base URL may be requested (the
    address rule is checked again: a name's addresses can change after it was saved), and
    `GET {base}/videos?limit=1` answers like an OpenAI-compatible video API."""
    try:
        connection.api_key()
    except Unreadable:
        return Outcome("unreadable", "The stored key can no longer be decrypted; enter it again.")
    try:
        check_base_url(connection.base_url)
    except forms.ValidationError as error:
        if error.code == "unresolvable":
            host = error.params["host"] if error.params else "its host"
            return Outcome("unreachable", f"Could not reach the provider: {host} does not resolve (DNS).")
        return Outcome("not_allowed", f"Not tested: {error.messages[0]}")
    with VideoAPIClient.for_connection(connection, pool_size=1) as client:
        client.timeout = min(client.timeout, TEST_TIMEOUT)
        client.connect_timeout = min(client.connect_timeout, client.timeout)
        try:
            client.list_videos(limit=1)
        except ProviderError as error:
            outcome = _outcome_for(error, client.timeout)
            logger.info("Connection %s tested: %s (HTTP %s)", connection.pk, outcome.kind, error.status_code)
            return outcome
    logger.info("Connection %s tested: reached", connection.pk)
    return Outcome("reached", "Reached: this is an OpenAI-compatible video API, and the key was accepted.")


def _outcome_for(error: ProviderError, timeout: float) -> Outcome:
    detail = (error.detail or "")[:DETAIL_LIMIT]
    if isinstance(error, AuthError):
        return Outcome("key_refused", f"The provider refused the key (HTTP {error.status_code}).", detail)
    if isinstance(error, QuotaExceeded):
        return Outcome("quota", "The account is out of quota or credit.", detail)
    if isinstance(error, RateLimited):
        return Outcome("rate_limited", "Rate limited right now, but the key was accepted.", detail)
    if isinstance(error, NotFound):
        return Outcome(
            "not_video_api",
            "Reached something, but not an OpenAI-compatible video API: …/videos answered "
            f"HTTP {error.status_code}. Check the version prefix in the base URL (such as /v1).",
            detail,
        )
    if isinstance(error, TransientError):
        if error.status_code == 200:
            # An HTML page, an empty body or JSON without a `data` list.
            return Outcome(
                "not_video_api",
                f"Reached something, but not an OpenAI-compatible video API: {error.message} "
                "Check the base URL and its version prefix.",
            )
        if error.status_code is not None:
            return Outcome(
                "failing",
                f"Reached the provider, but it is failing right now (HTTP {error.status_code}); "
                "try again later.",
                detail,
            )
        return Outcome("unreachable", f"Could not reach the provider: {_unreachable_reason(error, timeout)}")
    if isinstance(error, PermanentError):
        return Outcome(
            "not_video_api",
            f"Reached something, but not an OpenAI-compatible video API: {error.message} "
            "Check the base URL and its version prefix.",
            detail,
        )
    return Outcome("failing", error.message, detail)


def _unreachable_reason(error: TransientError, timeout: float) -> str:
    # The client names only the exception's class (never the URL or a header); say it in words.
    message = error.message
    if "ConnectTimeout" in message:
        return "connecting timed out."
    if "SSLError" in message:
        return "the TLS handshake failed (a certificate or protocol problem)."
    if "did not answer within" in message:
        return f"no answer within {timeout:g} s."
    if not error.sent:
        return "the connection was refused, or the host name does not resolve."
    return message
