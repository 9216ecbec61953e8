"""Who is calling the API, and whether they may: the bearer key, its workspace, its
read-only flag and its rate limit, checked on every request before a view runs.

Only `Authorization: Bearer <key>` authenticates. The session cookie a browser may also
send is never looked at, so a signed-in person's browser cannot be made to call the API
(no CSRF to defend against), and the API is exempt from Django's CSRF check.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from api.errors import ApiError, error_response
from api.models import ApiKey

logger = logging.getLogger("api")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RATE_WINDOW = 60  # seconds: API_RATE_LIMIT is per minute


def bearer_key(request: HttpRequest) -> ApiKey:
    """The live key the request carries; ApiError 401 without one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if not header:
        raise ApiError(
            401,
            "missing_key",
            "Send an API key: Authorization: Bearer <key>.",
            {"WWW-Authenticate": 'Bearer realm="api"'},
        )
    key = ApiKey.objects.by_plaintext(token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        # The same answer for a malformed, unknown or revoked key: nothing to probe.
        raise ApiError(
            401,
            "invalid_key",
            "The API key is not valid (unknown or revoked).",
            {"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'},
        )
    return key


def check_rate(key: ApiKey, now: float | None = None) -> None:
    """Count this request against the key's minute; ApiError 429 past API_RATE_LIMIT.

    A fixed window per key in Django's cache (Redis or the database cache), so every web
    process shares the count. `add` then `incr` is atomic on Redis; on the database cache
    two simultaneous requests may count once, which a limit meant to stop floods can bear.
    """
    now = time.time() if now is None else now
    window = int(now // RATE_WINDOW)
    name = f"api-rate:{key.key_hash[:32]}:{window}"
    cache.add(name, 0, timeout=RATE_WINDOW * 2)
    try:
        count = cache.incr(name)
    except ValueError:  # expired between add and incr (a cache under pressure)
        cache.set(name, 1, timeout=RATE_WINDOW * 2)
        count = 1
    if count > settings.API_RATE_LIMIT:
        retry = max(1, math.ceil((window + 1) * RATE_WINDOW - now))
        raise ApiError(
            429,
            "rate_limited",
            f"Too many requests for this key (at most {settings.API_RATE_LIMIT} a minute); "
            f"try again in {retry} s.",
            {"Retry-After": str(retry)},
        )


def api_view(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """An API endpoint answering `methods`: the view gets the request's key as `request.api_key`
    (authenticated, within its rate limit, and allowed to write when the method writes),
    and any ApiError it raises becomes its JSON answer."""
    allowed = frozenset(methods)

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                key = bearer_key(request)
                check_rate(key)
                key.mark_used()
                if request.method not in allowed:
                    raise ApiError(
                        405,
                        "method_not_allowed",
                        f"{request.method} is not allowed here; use {', '.join(sorted(allowed))}.",
                        {"Allow": ", ".join(sorted(allowed))},
                    )
                if request.method in WRITE_METHODS and key.read_only:
                    raise ApiError(403, "read_only_key", "This API key is read-only; this request writes.")
                request.api_key = key
                return view(request, *args, **kwargs)
            except ApiError as error:
                return error.response()

        return wrapped

    return decorate


@csrf_exempt
def unknown_endpoint(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Anything under the API's prefix that is no endpoint: a JSON 404, not the HTML page."""
    document = request.build_absolute_uri(reverse("api:openapi"))
    return error_response(404, "no_such_endpoint", f"There is no such API endpoint; see {document}.")
