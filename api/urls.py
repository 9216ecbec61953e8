"""The JSON API, mounted at /api/v1/ (dashboard.urls). Task IDs may contain `/`, `+` and
`=`, so they are matched with `path:`; the ID is looked up, never used as a path."""

from __future__ import annotations

from django.urls import path, re_path

from api import auth, views

app_name = "api"

urlpatterns = [
    path("tasks", views.tasks, name="tasks"),
    path("tasks/<path:task_id>", views.task, name="task"),
    path("videos", views.videos, name="videos"),
    path("videos/<int:submission_id>", views.video, name="video"),
    path("openapi.json", views.openapi_document, name="openapi"),
    # Everything else under the prefix answers in JSON too.
    path("", auth.unknown_endpoint, name="root"),
    re_path(r"^(?P<rest>.+)$", auth.unknown_endpoint),
]
