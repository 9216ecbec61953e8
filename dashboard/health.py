"""/healthz: answered before any other middleware.

Platforms probe it over plain HTTP with their own Host header, so it must not be
redirected to HTTPS nor rejected by ALLOWED_HOSTS, and it must say whether the
database answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

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
    from videos.worker_status import STALE_AFTER

    try:
        last_seen = WorkerHeartbeat.objects.latest_seen()
    except DatabaseError:
        logger.warning("health check: could not read the worker heartbeat", exc_info=True)
        return {"last_seen": None, "alive": False}
    alive = last_seen is not None and timezone.now() - last_seen <= STALE_AFTER
    return {"last_seen": last_seen.isoformat() if last_seen else None, "alive": alive}


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.rstrip("/") != HEALTH_PATH:
            return self.get_response(request)
        ok = database_ok()
        body: dict = {"status": "ok" if ok else "error", "database": "ok" if ok else "error"}
        if ok:
            # Reported, not judged: the web process is healthy even while no worker runs,
            # but a monitor can alert on "alive": false.
            body["worker"] = worker_health()
        response = JsonResponse(body)
        response.status_code = 200 if ok else 503
        response["Cache-Control"] = "no-store"
        return response
