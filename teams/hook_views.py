"""The endpoint a provider pushes events to: POST /hooks/<token>/.

No session and no CSRF token: the connection's signing secret is the credential (see
teams.hooks). An event only says "look now": the worker then polls the task, and its state
comes from the provider's answer, never from the event's body. Nothing is written for a
refused event, and no answer says anything about the secret.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from dashboard import encryption
from teams import hooks
from teams.models import AuditEntry, HookDelivery, ProviderConnection
from teams.roles import Role
from videos.models import VideoTask

logger = logging.getLogger("teams.hooks")

# Event IDs are kept this long: far beyond the 5-minute signature window, so a retry or a
# replay of a seen event is recognised, while the table stays small.
DELIVERY_MEMORY = timedelta(days=1)

TRACKED_NOTE = "Tracked from the provider's webhook."


def _answer(status: int, **fields: str) -> JsonResponse:
    return JsonResponse(fields, status=status)


@csrf_exempt
@require_POST
def receive(request: HttpRequest, token: str) -> JsonResponse:
    if len(token) > 64:
        return _answer(404, error="Unknown webhook.")
    connection = get_object_or_404(
        ProviderConnection.objects.select_related("workspace", "created_by"), hook_token=token
    )
    body = _read_body(request)
    if body is None:
        return _answer(413, error=f"The body is over {hooks.MAX_BODY // 1024} KiB.")
    try:
        secret = connection.hook_secret()
    except encryption.Unreadable:
        logger.warning("Webhook of connection %s: its signing secret cannot be decrypted.", connection.pk)
        secret = ""
    try:
        verified = hooks.verify(secret, request.headers, body, time.time())
        event = hooks.parse(verified)
    except hooks.Refused as refused:
        if not secret:
            logger.info("Webhook of connection %s refused an event: no signing secret is set.", connection.pk)
        else:
            logger.info("Webhook of connection %s refused an event: %s", connection.pk, refused.message)
        return _answer(refused.status, error=refused.message)
    return _act(connection, verified, event)


def _read_body(request: HttpRequest) -> bytes | None:
    """The raw body, or None when it is over the limit: told by Content-Length first, and
    never more than the limit and one byte read from the stream whatever it says."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > hooks.MAX_BODY:
        return None
    body = request.read(hooks.MAX_BODY + 1)
    return None if len(body) > hooks.MAX_BODY else body


def _act(connection: ProviderConnection, verified: hooks.Verified, event: hooks.Event) -> JsonResponse:
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                HookDelivery.objects.create(
                    connection=connection, event_id=verified.event_id, received_at=now
                )
        except IntegrityError:
            # Seen before (the provider retried, or someone replays a captured event):
            # answered as a success so the provider stops, acted on once only.
            return _answer(200, result="duplicate")
        connection.mark_hook_received(now)
        HookDelivery.objects.prune(connection, now - DELIVERY_MEMORY)
        if not event.is_about_a_task:
            return _answer(200, result="ignored")
        result = _look_now(connection, event.video_id)
    logger.info("Webhook of connection %s: %s %s (%s).", connection.pk, event.type, event.video_id, result)
    return _answer(200, result=result)


def _look_now(connection: ProviderConnection, video_id: str) -> str:
    """Make the worker poll the task now, or track it when the workspace does not yet."""
    tasks = VideoTask.objects.filter(workspace=connection.workspace, task_id=video_id)
    task = tasks.only("pk", "connection_id").first()
    if task is not None:
        if task.connection_id != connection.pk:
            # The workspace tracks this ID on another provider: that provider speaks for it.
            return "tracked on another connection"
        return "polling" if task.poll_soon() else "finished"
    owner = connection.created_by or _an_owner(connection)
    if owner is None:
        return "ignored"
    created, _already = VideoTask.objects.track(
        owner, [(video_id, "")], note=TRACKED_NOTE, workspace=connection.workspace, connection=connection
    )
    if not created:
        return "polling"  # tracked meanwhile by someone else: the worker polls it anyway
    VideoTask.objects.filter(pk__in=[task.pk for task in created]).update(added_via=VideoTask.AddedVia.HOOK)
    AuditEntry.record(
        connection.workspace, f"webhook of {connection.name}", AuditEntry.Kind.TRACKED, video_id, TRACKED_NOTE
    )
    return "tracking"


def _an_owner(connection: ProviderConnection) -> Any:
    membership = connection.workspace.memberships.filter(role=Role.OWNER).select_related("user").first()
    return membership.user if membership else None
