"""/healthz: answered before any other middleware.

Platforms probe it over plain HTTP with their own Host header, so it must not be
redirected to HTTPS nor rejected by ALLOWED_HOSTS, and it must say whether the
database answers.

To the world it says only `ok` (200) or `not ok` (503). A request carrying the token in
HEALTHZ_TOKEN gets the detail as JSON: the database, the newest worker heartbeat, the
background jobs that keep failing and the provider connections the worker holds back. The
token goes in `Authorization: Bearer <token>`, or, for monitors that cannot set a header,
in `?token=<token>` (which access logs record).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.warning("health check: the database did not answer", exc_info=True)
        return False
    return True


def worker_health() -> dict:
    from django.utils import timezone

    from videos.models import WorkerHeartbeat
    from videos.worker_status import heard_since, held_back, is_silent

    now = timezone.now()
    try:
        last_seen, failing = WorkerHeartbeat.objects.overview(seen_since=heard_since(now))
        connections = held_back(now)
    except DatabaseError:
        logger.warning("health check: could not read the worker heartbeat", exc_info=True)
        return {"last_seen": None, "alive": False, "failing_jobs": []}
    alive = not is_silent(last_seen, now)
    seen = last_seen.isoformat() if last_seen else None
    health = {"last_seen": seen, "alive": alive, "failing_jobs": failing}
    if connections:
        # Provider connections blocked (key refused, quota, unreadable) or paused, by id and
        # name (never a key); present only then, so a monitor can alert on the key itself.
        health["connections_held_back"] = connections
    return health


def may_see_detail(request: HttpRequest) -> bool:
    """Whether the request carries HEALTHZ_TOKEN (never, while the setting is empty)."""
    expected = settings.HEALTHZ_TOKEN
    if not expected:
        return False
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    given = credentials.strip() if scheme.lower() == "bearer" else request.GET.get("token", "")
    return hmac.compare_digest(given.encode(), expected.encode())


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.rstrip("/") != HEALTH_PATH:
            return self.get_response(request)
        ok = database_ok()
        if may_see_detail(request):
            body: dict = {"status": "ok" if ok else "error", "database": "ok" if ok else "error"}
            if ok:
                # Reported, not judged: the web process is healthy even while no worker runs
                # or a job fails, but a monitor can alert on "alive": false or "failing_jobs".
                body["worker"] = worker_health()
            response: HttpResponse = JsonResponse(body)
        else:
            response = HttpResponse("ok\n" if ok else "not ok\n", content_type="text/plain; charset=utf-8")
        response.status_code = 200 if ok else 503
        response["Cache-Control"] = "no-store"
        return response
