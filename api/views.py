"""The JSON API's endpoints (/api/v1/...), for a workspace's scripts. Each acts in the
workspace of the request's key only (api.auth.api_view): another workspace's task is a
404, as if it did not exist. The rules are the dashboard's own: task IDs are checked like
the track form's, a connection is chosen like the forms choose it, and a video is started
with videos.submissions.submit (sent once, never retried; a lost answer is reconciled by
the worker)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import urlencode

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from api import openapi
from api.auth import api_view
from api.errors import ApiError, bad_request, not_found
from api.models import ApiKey, KeySubmission
from api.payloads import chosen_connection, find_connection, json_object, page_size, text, when
from api.representation import submission_json, task_json
from dashboard.encryption import Unreadable
from teams.models import AuditEntry, ProviderConnection
from videos.client import InvalidTaskId, VideoAPIClient, validate_task_id
from videos.forms import CreateVideoForm
from videos.listing import Cursor
from videos.models import Status, Submission, VideoTask, VideoTaskQuerySet
from videos.submissions import VideoRequest, submit

LIST_PARAMETERS = frozenset({"status", "connection", "updated_since", "cursor", "limit"})
UNREADABLE_KEY = "This connection's key can no longer be read; a manager must enter it again."


def _tasks(key: ApiKey) -> VideoTaskQuerySet:
    return VideoTask.objects.in_workspace(key.workspace).select_related(
        "workspace", "connection", "owner", "api_key"
    )


def _actor(key: ApiKey) -> str:
    """Who the audit trail says did it: the key, by name (not the person who made it)."""
    return f"API key {key.name}"


def _acting_user(key: ApiKey) -> Any:
    user = key.acting_user()
    if user is None:
        raise ApiError(409, "no_owner", "This key's workspace has no owner to add tasks as.")
    return user


def _usable(connection: ProviderConnection | None) -> None:
    if connection is None:
        return
    try:
        connection.api_key()
    except Unreadable:
        raise ApiError(409, "connection_key_unreadable", UNREADABLE_KEY) from None


def _encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(str(cursor).encode()).decode().rstrip("=")


def _decode_cursor(value: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raw = ""
    cursor = Cursor.parse(raw) if len(value) <= 64 else None
    if cursor is None:
        raise bad_request("invalid_cursor", "'cursor' is not one this API gave out; start again without it.")
    return cursor


@api_view("GET", "POST")
def tasks(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _track(request)
    return _list(request)


def _list(request: HttpRequest) -> HttpResponse:
    """The workspace's tasks, newest first, one keyset page at a time: the cursor is the
    last row's (created_at, pk), so a page is as cheap at the millionth task as at the
    first (the videotask_board_recent index), and tasks added meanwhile (which sort
    before the cursor) neither shift a page nor repeat a task."""
    key: ApiKey = request.api_key
    params = request.GET
    unknown = sorted(set(params) - LIST_PARAMETERS)
    if unknown:
        raise bad_request(
            "unknown_parameter",
            f"Unknown parameter(s): {', '.join(unknown)}; accepted: {', '.join(sorted(LIST_PARAMETERS))}.",
        )
    queryset = _tasks(key)
    if "status" in params:
        if params["status"] not in Status.values:
            raise bad_request("invalid_value", f"'status' must be one of {', '.join(Status.values)}.")
        queryset = queryset.filter(status=params["status"])
    if "connection" in params:
        queryset = queryset.filter(connection=find_connection(key.workspace, params["connection"]))
    if "updated_since" in params:
        queryset = queryset.filter(changed_at__gte=when(params["updated_since"], "updated_since"))
    if "cursor" in params:
        edge = _decode_cursor(params["cursor"])
        queryset = queryset.filter(
            Q(created_at__lt=edge.created_at) | Q(created_at=edge.created_at, pk__lt=edge.pk)
        )
    limit = page_size(params.get("limit"))
    rows = list(queryset.order_by("-created_at", "-pk")[: limit + 1])
    more, rows = len(rows) > limit, rows[:limit]
    next_url = None
    if more:
        query = {name: value for name, value in params.items() if name != "cursor"}
        query["cursor"] = _encode_cursor(Cursor.of(rows[-1]))
        next_url = request.build_absolute_uri(f"{reverse('api:tasks')}?{urlencode(query)}")
    return JsonResponse({"data": [task_json(task, request) for task in rows], "next": next_url})


def _track(request: HttpRequest) -> HttpResponse:
    """Track a task ID: 201 with the new task, or 200 with the one the workspace already
    tracks (so a script may retry freely)."""
    key: ApiKey = request.api_key
    data = json_object(
        request,
        {
            "task_id": ((str,), True),
            "label": ((str,), False),
            "connection": ((str, int, type(None)), False),
        },
    )
    try:
        task_id = validate_task_id(data["task_id"])
    except InvalidTaskId as error:
        raise bad_request("invalid_task_id", str(error)) from None
    label = text(data.get("label", ""), "label", 200)
    workspace = key.workspace
    connection = chosen_connection(workspace, data.get("connection"), given="connection" in data)
    existing = _tasks(key).filter(task_id=task_id).first()
    if existing is not None:
        return JsonResponse(task_json(existing, request), status=200)
    _usable(connection)
    with transaction.atomic():
        created, _already = VideoTask.objects.track(
            _acting_user(key),
            [(task_id, label)],
            f"Tracked through the API key {key.name}.",
            workspace=workspace,
            connection=connection,
        )
        # Who added it: the key (the board shows its name). Not a displayed field of the
        # row as track() wrote it, so no page refresh is owed for it.
        if created:
            VideoTask.objects.filter(pk=created[0].pk).update(added_via=VideoTask.AddedVia.API, api_key=key)
    if created:
        AuditEntry.record(workspace, _actor(key), AuditEntry.Kind.TRACKED, task_id, label)
    # Re-read: a concurrent call may have tracked it first (then it is theirs, and a 200).
    task = _tasks(key).get(task_id=task_id)
    return JsonResponse(task_json(task, request), status=201 if created else 200)


@api_view("GET", "DELETE")
def task(request: HttpRequest, task_id: str) -> HttpResponse:
    key: ApiKey = request.api_key
    found = _tasks(key).filter(task_id=task_id).first()
    if found is None:
        raise not_found()
    if request.method == "GET":
        return JsonResponse(task_json(found, request))
    # Stop tracking: the task leaves the dashboard; the video stays at the provider.
    label = str(found)
    found.delete()
    AuditEntry.record(
        key.workspace,
        _actor(key),
        AuditEntry.Kind.STOPPED_TRACKING,
        task_id,
        label if label != task_id else "",
    )
    return HttpResponse(status=204)


@api_view("POST")
def videos(request: HttpRequest) -> HttpResponse:
    """Start a video: 201 with the submission and its task when the provider answered with
    one; 202 when its answer was lost (the worker looks for the video in the provider's
    list, and GET /videos/{submission_id} tells what came of it); 502 when the provider refused."""
    key: ApiKey = request.api_key
    data = json_object(
        request,
        {
            "prompt": ((str,), True),
            "model": ((str,), False),
            "seconds": ((str, int, float), False),
            "size": ((str,), False),
            "connection": ((str, int, type(None)), False),
        },
    )
    workspace = key.workspace
    connections = list(workspace.connections.all())
    fields = {name: str(data[name]) for name in ("prompt", "model", "seconds", "size") if name in data}
    if "connection" in data:
        value = data["connection"]
        fields["connection"] = "" if value is None else str(find_connection(workspace, value).pk)
    form = CreateVideoForm(fields, connections=connections)
    if not form.is_valid():
        problems = "; ".join(
            f"{name}: {' '.join(errors)}" if name != "__all__" else " ".join(errors)
            for name, errors in form.errors.items()
        )
        raise bad_request("invalid_value", problems)
    cleaned = form.cleaned_data
    connection = cleaned["connection"]
    try:
        client = VideoAPIClient.for_connection(connection)
    except Unreadable:
        raise ApiError(409, "connection_key_unreadable", UNREADABLE_KEY) from None
    owner = _acting_user(key)
    video = VideoRequest(
        prompt=cleaned["prompt"], model=cleaned["model"], seconds=cleaned["seconds"], size=cleaned["size"]
    )
    with client:
        submission = submit(owner, video, client, workspace=workspace, connection=connection)
    # The task this create made was added by the key; a lost create's task too, when the
    # worker finds it later (api.signals).
    KeySubmission.objects.create(submission=submission, api_key=key)
    KeySubmission.claim_task(submission, key)
    AuditEntry.record(
        workspace,
        _actor(key),
        AuditEntry.Kind.STARTED,
        submission.task.task_id if submission.task_id else "",
        submission.get_state_display(),
    )
    submission = _submissions(key).get(pk=submission.pk)
    body = submission_json(submission, request)
    if submission.state == Submission.State.CREATED:
        return JsonResponse(body, status=201)
    if submission.state == Submission.State.UNKNOWN:
        return JsonResponse(body, status=202)
    return JsonResponse(
        {"error": submission.error_message, "code": "provider_refused", "submission": body}, status=502
    )


def _submissions(key: ApiKey) -> Any:
    return Submission.objects.filter(workspace=key.workspace).select_related(
        "connection", "task__workspace", "task__connection", "task__owner", "task__api_key"
    )


@api_view("GET")
def video(request: HttpRequest, submission_id: int) -> HttpResponse:
    """What came of a create: still unknown, created (with its task), refused, or not created."""
    submission = _submissions(request.api_key).filter(pk=submission_id).first()
    if submission is None:
        raise not_found("No such video submission in this key's workspace.")
    return JsonResponse(submission_json(submission, request))


@require_GET
def openapi_document(request: HttpRequest) -> HttpResponse:
    """The API's OpenAPI 3.1 description; public, like the README that documents it."""
    return JsonResponse(openapi.document(request.build_absolute_uri(reverse("api:root"))))
