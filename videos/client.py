"""The provider client: the only module that speaks HTTP to the video API.

Every API answer becomes either a `TaskAnswer` or one of the `ProviderError` subclasses
below, so the poller decides what to do from a type, never from a status code (the status
rule itself is `http.classify`, shared with safe_fetch.py). Error messages are short
display strings, safe to store and show: they never contain the API key.

One method is different: `open_content` streams a file (the video bytes, not an API answer)
through a SafeFetcher, and raises that fetcher's `FetchError` like every other file fetch,
so the download proxy and the keeper handle a content URL and a direct link the same way.

A client holds a pooled session: `close` it, or use it as a context manager
(`with VideoAPIClient.from_settings() as client:`).
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote, urljoin

import requests
import urllib3.exceptions
from django.conf import settings

from videos import deadlines
from videos.http import REDIRECT_STATUSES, USER_AGENT, Kind, ca_bundle, classify
from videos.safe_fetch import Download, SafeFetcher, forbidden_reason, host_allowed, within_prefix
from videos.scrub import scrubber_for

if TYPE_CHECKING:
    from teams.models import ProviderConnection

MAX_TASK_ID_LENGTH = 255
# A wait longer than this from a Retry-After header is a misconfigured gateway, not a plan.
# It bounds what a create's refusal quotes; the poller's pauses have their own, shorter cap
# (models.MAX_PAUSE), after which one probe request tells whether the limit still holds.
MAX_RETRY_AFTER = 24 * 3600.0
MAX_REDIRECTS = 3


class InvalidTaskId(ValueError):
    """The text cannot be a task ID: it would change the request path or is not printable."""


class ProviderError(Exception):
    """Any answer other than a usable task object. `transient`: asking again later may work."""

    transient = True

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        # The provider's own words and code, when its error body had them (scrubbed of
        # the key): what a person needs to fix a refused create.
        self.detail = ""
        self.code = ""


class NotFound(ProviderError):
    """404, or 400 with code task_not_exist: the provider does not know the task (yet)."""

    transient = False


class AuthError(ProviderError):
    """401/403: the key is wrong, revoked or not allowed; no request with it will work."""

    transient = False


class QuotaExceeded(ProviderError):
    """429 insufficient_quota: out of credit, which waiting does not fix."""

    transient = False


class RateLimited(ProviderError):
    """429: slow down. `retry_after` is the wait the provider asked for, in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None, status_code: int = 429) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class TransientError(ProviderError):
    """5xx, timeouts, resets, HTML or broken JSON: keep the state and try again later.

    `sent` is False only when the request certainly never reached the provider (the
    connection was refused or never opened): what matters for a create, which must not be
    sent twice.
    """

    def __init__(self, message: str, *, status_code: int | None = None, sent: bool = True) -> None:
        super().__init__(message, status_code=status_code)
        self.sent = sent


class PermanentError(ProviderError):
    """Another 4xx: the request itself is wrong; asking again the same way will not help."""

    transient = False


@dataclass(frozen=True)
class TaskAnswer:
    payload: dict[str, Any]
    # Seconds the provider asks us to wait before the next poll (openai-poll-after-ms).
    poll_after: float | None = None


class RateLimiter:
    """At most `rate` requests a second to one provider, shared by every thread.

    Requests are spaced evenly (no burst allowance), so no one-second window ever holds
    more than `rate` + 1 of them.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def validate_task_id(task_id: str) -> str:
    """Return the task ID stripped, or raise InvalidTaskId with a message fit for a user.

    IDs are opaque and may contain `/`, `+` or `=`; those are percent-encoded into the path.
    What percent-encoding cannot neutralise is refused: dot segments, which servers resolve,
    and control characters or spaces, which no provider issues.
    """
    task_id = task_id.strip()
    if not task_id:
        raise InvalidTaskId("A task ID cannot be empty.")
    if len(task_id) > MAX_TASK_ID_LENGTH:
        raise InvalidTaskId(f"A task ID is at most {MAX_TASK_ID_LENGTH} characters.")
    if task_id.strip(".") == "":
        raise InvalidTaskId("A task ID cannot be made only of dots.")
    if any(ch.isspace() or not ch.isprintable() for ch in task_id):
        raise InvalidTaskId("A task ID cannot contain spaces or control characters.")
    return task_id


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, else `Retry-After` (seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            wait = float(raw_ms) / 1000
        except ValueError:
            wait = None
        if wait is not None and wait == wait and wait >= 0:
            return min(wait, MAX_RETRY_AFTER)
    raw = (headers.get("Retry-After") or "").strip()
    if not raw:
        return None
    try:
        wait = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait = when.timestamp() - (now if now is not None else time.time())
    if wait != wait:  # NaN
        return None
    return min(max(wait, 0.0), MAX_RETRY_AFTER)


def _poll_after(headers: Any) -> float | None:
    raw = headers.get("openai-poll-after-ms")
    if not raw:
        return None
    try:
        value = float(raw) / 1000
    except ValueError:
        return None
    return min(value, 3600.0) if value == value and value > 0 else None


def _is_connect_failure(exc: requests.ConnectionError) -> bool:
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 wraps it in a MaxRetryError
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


def _error_message(body: Any) -> str:
    """The `message` of an OpenAI-style error body, or of a flat one; "" when absent."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str) or not message.strip():
        message = body.get("message")
    return message.strip() if isinstance(message, str) else ""


def _error_code(body: Any) -> str:
    """The `code` of an OpenAI-style error body, or of a flat one; "" when absent."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    if code in (None, ""):
        code = body.get("code")
    return str(code) if isinstance(code, str | int) and not isinstance(code, bool) else ""


def task_url(base_url: str, task_id: str) -> str:
    """`{base}/videos/{id}`: the one rule for a task's path. The ID is validated and
    percent-encoded, so no ID can change the path (`/`, `..`, `?`, `#`)."""
    return f"{base_url.rstrip('/')}/videos/{quote(validate_task_id(task_id), safe='')}"


def content_url(base_url: str, task_id: str, variant: str = "video") -> str:
    """`{base}/videos/{id}/content?variant=...`, the bytes of a task's video or thumbnail.
    A function as well as a method: downloads name the URL without building a client."""
    return f"{task_url(base_url, task_id)}/content?variant={quote(variant, safe='')}"


class VideoAPIClient:
    """Client for one provider: a base URL (with its version prefix) and a key.

    Thread-safe for concurrent GETs: one pooled, keep-alive session serves every thread.
    Each request is bounded by a connect timeout, a read timeout, a wall-clock deadline
    (`timeout`) over connecting, headers and body together, and a cap on its size.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 20.0,
        connect_timeout: float = 5.0,
        max_response_bytes: int = 1_048_576,
        pool_size: int = 16,
        max_rps: float = 0,
        public_only: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.max_response_bytes = max_response_bytes
        self._limiter = RateLimiter(max_rps) if max_rps > 0 else None
        self.session = requests.Session()
        # requests re-reads proxy, CA-bundle and netrc settings from the environment on
        # every request (a scan of os.environ each time: a third of a request's CPU here).
        # Read them once, now, and keep honouring them.
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        self.session.verify = ca_bundle()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        adapter = deadlines.DeadlineHTTPAdapter(
            pool_connections=2,
            pool_maxsize=pool_size,
            max_retries=0,
            refuse_peer=forbidden_reason if public_only else None,
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    @classmethod
    def from_settings(cls, *, pool_size: int = 4) -> VideoAPIClient:
        """A client for VIDEO_API_BASE_URL with VIDEO_API_KEY and the configured limits."""
        return cls(
            settings.VIDEO_API_BASE_URL,
            settings.VIDEO_API_KEY,
            timeout=settings.VIDEO_API_TIMEOUT,
            max_response_bytes=settings.VIDEO_API_MAX_RESPONSE_BYTES,
            pool_size=pool_size,
            max_rps=settings.VIDEO_API_MAX_RPS,
        )

    @classmethod
    def for_connection(cls, connection: ProviderConnection | None, *, pool_size: int = 4) -> VideoAPIClient:
        """A client for a workspace's provider connection (None: the deployment's own, from
        the settings), with the configured limits and the connection's request ceiling.
        Raises dashboard.encryption.Unreadable when its stored key cannot be decrypted.

        A connection's base URL is typed by a workspace manager, not the operator: unless
        its host is listed in VIDEO_FETCH_ALLOW_HOSTS, the client connects to public
        addresses only, checked on each new socket's actual peer."""
        if connection is None:
            return cls.from_settings(pool_size=pool_size)
        return cls(
            connection.base_url,
            connection.api_key(),
            timeout=settings.VIDEO_API_TIMEOUT,
            max_response_bytes=settings.VIDEO_API_MAX_RESPONSE_BYTES,
            pool_size=pool_size,
            max_rps=connection.max_rps,
            public_only=not host_allowed(connection.base_url, settings.VIDEO_FETCH_ALLOW_HOSTS),
        )

    def __repr__(self) -> str:
        # No key here: reprs end up in logs and error reports.
        return f"<VideoAPIClient {self.base_url}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the session's pooled connections. Idempotent."""
        self.session.close()

    def task_url(self, task_id: str) -> str:
        return task_url(self.base_url, task_id)

    def retrieve(self, task_id: str) -> TaskAnswer:
        """GET /videos/{task_id}: the task's status object, or a ProviderError."""
        return self._task_answer(*self._request("GET", self.task_url(task_id)))

    def create(
        self,
        *,
        prompt: str,
        model: str,
        seconds: str = "",
        size: str = "",
        reference: tuple[str, bytes, str] | None = None,
    ) -> TaskAnswer:
        """POST /videos: start a video. JSON, or multipart when a reference image
        (name, bytes, content type) goes with it.

        Never retried here or anywhere: a second POST is a second billed video. A
        TransientError with `sent` True means the provider may have created it anyway.
        """
        fields = {"prompt": prompt, "model": model, "seconds": seconds, "size": size}
        fields = {key: value for key, value in fields.items() if value}
        url = f"{self.base_url}/videos"
        if reference is None:
            return self._task_answer(*self._request("POST", url, json=fields))
        return self._task_answer(
            *self._request("POST", url, data=fields, files={"input_reference": reference})
        )

    def remix(self, task_id: str, prompt: str) -> TaskAnswer:
        """POST /videos/{id}/remix: a new video from a finished one. Never retried either."""
        return self._task_answer(
            *self._request("POST", f"{self.task_url(task_id)}/remix", json={"prompt": prompt})
        )

    def delete(self, task_id: str) -> dict[str, Any]:
        """DELETE /videos/{id}: remove the video at the provider."""
        status_code, headers, body = self._request("DELETE", self.task_url(task_id))
        data = self._json(body)
        if 200 <= status_code < 300:
            return data if isinstance(data, dict) else {}
        raise self._error_for(status_code, headers, data)

    def content_url(self, task_id: str, variant: str = "video") -> str:
        return content_url(self.base_url, task_id, variant)

    def open_content(self, task_id: str, variant: str, fetcher: SafeFetcher) -> Download:
        """GET /videos/{id}/content: the video (or thumbnail) bytes, streamed.

        Through `fetcher` rather than this client's session: a file can be gigabytes and
        must stream under the fetcher's size cap and deadline, and a redirect to a CDN is
        checked like any other untrusted link (the key goes only to URLs under the base URL).
        So, unlike every other method here, it raises the fetcher's FetchRefused or
        FetchFailed (a `FetchError`), never a ProviderError.
        """
        return fetcher.open(self.content_url(task_id, variant), **self.credentials())

    def credentials(self) -> dict[str, Any]:
        """The key for SafeFetcher.open, scoped to this provider's base URL: the fetcher sends
        it on no other origin and no other path, not even after a redirect."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return {"headers": headers, "headers_scope": self.base_url}

    def list_videos(self, *, after: str = "", limit: int = 100, order: str = "desc") -> dict[str, Any]:
        """GET /videos: one page of the account's videos (`data`, `has_more`, `last_id`)."""
        params = {"limit": str(limit), "order": order, **({"after": after} if after else {})}
        status_code, headers, body = self._request("GET", f"{self.base_url}/videos", params=params)
        data = self._json(body)
        if status_code == 200 and isinstance(data, dict) and isinstance(data.get("data"), list):
            return data
        if status_code == 200:
            raise TransientError(self._describe_unusable(body), status_code=200)
        raise self._error_for(status_code, headers, data)

    def _task_answer(self, status_code: int, headers: Any, body: bytes) -> TaskAnswer:
        data = self._json(body)
        if 200 <= status_code < 300:
            if not isinstance(data, dict):
                raise TransientError(self._describe_unusable(body), status_code=status_code)
            return TaskAnswer(payload=data, poll_after=_poll_after(headers))
        raise self._error_for(status_code, headers, data)

    def _request(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any, bytes]:
        """Send one request and read its whole answer within `timeout` seconds of wall-clock
        time, connecting, headers and body together, however slowly the provider sends.

        Redirects are followed only for GETs that stay under the base URL (same scheme, host
        and port, same path prefix): the key goes nowhere else, and an API answer is never
        fetched from wherever the provider points. A create is never re-sent.
        """
        if self._limiter is not None:
            self._limiter.acquire()
        deadline = deadlines.arm(self.timeout)
        try:
            with deadline.applied():
                for _ in range(MAX_REDIRECTS + 1):
                    status_code, headers, body = self._send(method, url, deadline, **kwargs)
                    if status_code not in REDIRECT_STATUSES:
                        return status_code, headers, body
                    url = self._redirect_target(method, url, status_code, headers)
                    kwargs.pop("params", None)  # the new location carries its own query
                raise TransientError(f"The provider redirected more than {MAX_REDIRECTS} times.")
        except requests.ConnectTimeout:
            # Never connected: the request did not leave this machine.
            raise TransientError("Could not reach the provider (ConnectTimeout).", sent=False) from None
        except (requests.Timeout, urllib3.exceptions.ReadTimeoutError):
            raise TransientError(f"The provider did not answer within {self.timeout:g} s.") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            if deadline.expired:
                raise TransientError(f"The provider did not answer within {self.timeout:g} s.") from None
            if isinstance(exc, requests.ConnectionError):
                # Refused or never connected: the request did not leave this machine.
                raise TransientError(
                    f"Could not reach the provider ({self._reason(exc)}).", sent=not _is_connect_failure(exc)
                ) from None
            raise TransientError(f"The request to the provider failed ({self._reason(exc)}).") from None
        finally:
            deadline.close()

    def _send(
        self, method: str, url: str, deadline: deadlines.Deadline, **kwargs: Any
    ) -> tuple[int, Any, bytes]:
        with self.session.request(
            method,
            url,
            timeout=(self.connect_timeout, self.timeout),
            stream=True,
            allow_redirects=False,
            **kwargs,
        ) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_response_bytes:
                raise TransientError(
                    f"The provider's answer is {int(declared)} bytes, over the "
                    f"{self.max_response_bytes}-byte limit.",
                    status_code=response.status_code,
                )
            chunks: list[bytes] = []
            size = 0
            # read1 returns what has arrived, so the limits are checked as bytes trickle in.
            while chunk := response.raw.read1(65536, decode_content=True):
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise TransientError(
                        f"The provider's answer is over the {self.max_response_bytes}-byte limit.",
                        status_code=response.status_code,
                    )
                chunks.append(chunk)
            if deadline.expired:
                # The watchdog shut the socket, which reads as a normal end of the body:
                # what arrived is a fragment, not the answer.
                raise TransientError(f"The provider did not answer within {self.timeout:g} s.")
            return response.status_code, response.headers, b"".join(chunks)

    def _redirect_target(self, method: str, url: str, status_code: int, headers: Any) -> str:
        location = (headers.get("Location") or "").strip()
        target = urljoin(url, location) if location else ""
        if method != "GET" or not target or not within_prefix(target, self.base_url):
            raise PermanentError(
                f"The provider redirected the request away from its API (HTTP {status_code}); not followed.",
                status_code=status_code,
            )
        return target

    @staticmethod
    def _json(body: bytes) -> Any:
        if not body:
            return None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            return None

    @staticmethod
    def _describe_unusable(body: bytes) -> str:
        if not body.strip():
            return "The provider answered 200 with an empty body."
        if body.lstrip()[:1] == b"<":
            return "The provider answered 200 with an HTML page instead of JSON."
        return "The provider answered 200 without a usable JSON object."

    def _error_for(self, status_code: int, headers: Any, data: Any) -> ProviderError:
        error = self._classify(status_code, headers, data)
        error.code = self._scrub(_error_code(data))
        error.detail = self._scrub(_error_message(data), limit=500)
        return error

    def _classify(self, status_code: int, headers: Any, data: Any) -> ProviderError:
        code = _error_code(data)
        kind = classify(status_code, code)
        if kind is Kind.NOT_FOUND:
            return NotFound("The provider does not know this task.", status_code=status_code)
        if kind is Kind.DENIED:
            return AuthError(
                f"The provider refused the API key (HTTP {status_code}"
                f"{', ' + self._scrub(code) if code else ''}).",
                status_code=status_code,
            )
        if kind is Kind.OUT_OF_QUOTA:
            return QuotaExceeded("The provider says the account is out of quota.", status_code=status_code)
        if kind is Kind.RATE_LIMITED:
            wait = parse_retry_after(headers)
            return RateLimited(
                "The provider is rate limiting us"
                + (f"; it asked for {wait:g} s." if wait is not None else "."),
                retry_after=wait,
            )
        if kind is Kind.UNAVAILABLE:
            return TransientError(f"The provider answered HTTP {status_code}.", status_code=status_code)
        return PermanentError(
            f"The provider answered HTTP {status_code}{': ' + self._scrub(code) if code else ''}.",
            status_code=status_code,
        )

    def _scrub(self, text: str, limit: int = 100) -> str:
        # Scrubbed, then cut: cutting first could leave a piece of the key too short to be
        # recognised as the whole key. The provider saw this client's key and no other.
        return scrubber_for(self.api_key).text(text)[:limit]

    def _reason(self, exc: Exception) -> str:
        # requests' messages name the URL; keep only the exception's class, never a header,
        # except for a refused address, whose message is our own.
        refused = deadlines.refused_peer(exc)
        if refused is not None:
            return refused.detail
        return type(exc).__name__


__all__ = [
    "AuthError",
    "InvalidTaskId",
    "NotFound",
    "PermanentError",
    "ProviderError",
    "QuotaExceeded",
    "RateLimited",
    "RateLimiter",
    "TaskAnswer",
    "TransientError",
    "VideoAPIClient",
    "content_url",
    "parse_retry_after",
    "task_url",
    "validate_task_id",
]
