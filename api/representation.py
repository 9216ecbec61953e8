"""What the API answers with: a task and a submission as JSON objects.

A task's `download_url` is the dashboard's own download route (which checks the caller's
access and streams through the SSRF-safe fetcher), never the provider's link, which may
carry a signature or need the provider key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from videos.models import Submission, VideoTask


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def added_by(task: VideoTask) -> dict[str, str | None]:
    """Who added the task: a person, an API key (by its name) or a provider webhook (by
    its connection's name)."""
    if task.added_via == VideoTask.AddedVia.API:
        return {"type": "api_key", "name": task.api_key.name if task.api_key_id else None}
    if task.added_via == VideoTask.AddedVia.HOOK:
        return {"type": "hook", "name": task.connection.name if task.connection_id else None}
    return {"type": "user", "name": task.owner.get_username()}


def task_json(task: VideoTask, request: HttpRequest) -> dict[str, Any]:
    download = (
        request.build_absolute_uri(reverse("videos:download", args=[task.pk])) if task.can_download else None
    )
    return {
        "id": task.pk,
        "task_id": task.task_id,
        "label": task.label,
        "workspace": task.workspace.slug,
        "connection": task.connection.name if task.connection_id else None,
        "status": task.status,
        "raw_status": task.raw_status,
        "progress": task.progress,
        "model": task.model,
        "seconds": float(task.seconds) if task.seconds is not None else None,
        "size": task.size,
        "error_code": task.error_code,
        "error_message": task.error_message,
        "metadata": task.metadata,
        "remote_created_at": _time(task.remote_created_at),
        "completed_at": _time(task.completed_at),
        "expires_at": _time(task.expires_at),
        "last_polled_at": _time(task.last_polled_at),
        "created_at": _time(task.created_at),
        "updated_at": _time(task.changed_at),
        "added_by": added_by(task),
        "download_url": download,
    }


def submission_json(submission: Submission, request: HttpRequest) -> dict[str, Any]:
    return {
        "id": submission.pk,
        "state": submission.state,
        "error_code": submission.error_code,
        "error_message": submission.error_message,
        "prompt": submission.prompt,
        "model": submission.model,
        "seconds": submission.seconds,
        "size": submission.size,
        "connection": submission.connection.name if submission.connection_id else None,
        "created_at": _time(submission.created_at),
        "task": task_json(submission.task, request) if submission.task_id else None,
    }
