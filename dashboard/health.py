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


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.rstrip("/") != HEALTH_PATH:
            return self.get_response(request)
        ok = database_ok()
        response = JsonResponse({"status": "ok" if ok else "error", "database": "ok" if ok else "error"})
        response.status_code = 200 if ok else 503
        response["Cache-Control"] = "no-store"
        return response
