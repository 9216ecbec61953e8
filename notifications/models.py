"""Notification channels of a workspace, the events they hear of, and their deliveries.

The poller and the worker only ever INSERT an `Event` (one batch, after their own
transaction commits); the worker's "deliver" job then fans each event out to the channels
that want it (one `Delivery` per channel and event) and sends them with retries
(notifications.delivery). Nothing here is sent inside a web request.

Channel targets (webhook URLs embed their token) and signing secrets are stored encrypted
(dashboard.encryption, listed in ENCRYPTED_FIELDS) and never shown after creation but for
`target_hint`.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from teams.models import Workspace


class EventKind(models.TextChoices):
    COMPLETED = "task.completed", "A video finished"
    FAILED = "task.failed", "A video failed"
    KEY_REFUSED = "connection.key_refused", "The provider refused a connection's key"
    WORKER_SILENT = "worker.silent", "The worker went silent (or came back after a gap)"
    TEST = "test", "Test"


# The events a person may choose (a test is sent on demand only).
CHOOSABLE_EVENTS = [kind for kind in EventKind if kind != EventKind.TEST]
DEFAULT_EVENTS = [EventKind.COMPLETED.value, EventKind.FAILED.value]

# A channel failing without a single success for this long is disabled; a delivery is
# retried for about as long.
FAILING_LIMIT = timedelta(days=1)
DELIVERY_WINDOW = timedelta(days=1)


def new_event_id() -> str:
    # Reused as `webhook-id` on every retry, so a receiver can drop duplicates.
    return "msg_" + secrets.token_urlsafe(18)


def _default_events() -> list[str]:
    return list(DEFAULT_EVENTS)


class NotificationChannelQuerySet(models.QuerySet):
    def listening(self, event: Event) -> NotificationChannelQuerySet:
        """The enabled channels `event` is for: of its workspace (every workspace for a
        deployment-wide event), subscribed to its kind, and in scope (a channel for "only my
        tasks" hears of its creator's tasks only). A test event goes to its channel alone."""
        if event.kind == EventKind.TEST:
            return self.filter(pk=event.channel_id, enabled=True)
        channels = self.filter(enabled=True)
        if event.workspace_id is not None:
            channels = channels.filter(workspace_id=event.workspace_id)
        if event.owner_id is not None:
            channels = channels.filter(Q(only_mine=False) | Q(created_by_id=event.owner_id))
        # JSON containment is not on SQLite: the kinds are few, filter in Python.
        return self.filter(pk__in=[c.pk for c in channels.only("pk", "events") if event.kind in c.events])


class NotificationChannel(models.Model):
    """Where a workspace's news goes: a signed webhook, a Slack, Discord or Microsoft Teams
    incoming webhook, or email addresses. `target` (the URL or the addresses) and, for a
    webhook, `signing_secret` (`whsec_…`, made when first saved) read and write the
    encrypted columns."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (signed JSON)"
        SLACK = "slack", "Slack"
        DISCORD = "discord", "Discord"
        TEAMS = "teams", "Microsoft Teams"
        EMAIL = "email", "Email"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="notification_channels")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=100, blank=True)
    target_encrypted = models.TextField(blank=True, editable=False)
    target_hint = models.CharField(max_length=300, blank=True, editable=False)
    secret_encrypted = models.TextField(blank=True, editable=False)
    events = models.JSONField(default=_default_events)
    only_mine = models.BooleanField(
        "only my tasks", default=False, help_text="Only the tasks of the person who made the channel."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    # Since the first failure after the last success; None while it works.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationChannelQuerySet.as_manager()

    class Meta:
        ordering = ["workspace", "created_at", "pk"]

    def __str__(self) -> str:
        return self.name or f"{self.get_kind_display()} {self.target_hint}"

    def __repr__(self) -> str:
        # Neither target nor secret, not even encrypted: reprs end up in logs.
        return f"<NotificationChannel {self.pk} {self.kind} of workspace {self.workspace_id}>"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.kind == self.Kind.WEBHOOK and not self.secret_encrypted:
            from dashboard import encryption
            from notifications.signing import new_secret

            self.secret_encrypted = encryption.encrypt(new_secret())
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "secret_encrypted"}
        if not self.target_hint and self.target_encrypted:
            self.target_hint = hint(self.kind, self.target)
        super().save(*args, **kwargs)

    @property
    def target(self) -> str:
        """The URL or the addresses, in plain text, for sending only."""
        from dashboard import encryption

        return encryption.decrypt(self.target_encrypted) if self.target_encrypted else ""

    @target.setter
    def target(self, plaintext: str) -> None:
        from dashboard import encryption

        plaintext = plaintext.strip()
        self.target_encrypted = encryption.encrypt(plaintext) if plaintext else ""
        self.target_hint = hint(self.kind, plaintext)

    @property
    def signing_secret(self) -> str:
        """The webhook's `whsec_…` secret in plain text ("" for other kinds)."""
        from dashboard import encryption

        return encryption.decrypt(self.secret_encrypted) if self.secret_encrypted else ""

    @property
    def event_labels(self) -> list[str]:
        return [EventKind(kind).label for kind in self.events if kind in EventKind.values]

    def record_success(self, now: datetime) -> None:
        self.failing_since = None
        self.last_success_at = now
        self.save(update_fields=["failing_since", "last_success_at"])

    def record_failure(self, now: datetime, error: str) -> None:
        """Count a failed delivery; a channel failing for FAILING_LIMIT is disabled, saying why."""
        self.failing_since = self.failing_since or now
        fields = ["failing_since"]
        if now - self.failing_since >= FAILING_LIMIT:
            self.enabled = False
            self.disabled_reason = f"Disabled after failing for a day. Last error: {error}"[:300]
            fields += ["enabled", "disabled_reason"]
        self.save(update_fields=fields)

    def enable(self) -> None:
        self.enabled = True
        self.disabled_reason = ""
        self.failing_since = None
        self.save(update_fields=["enabled", "disabled_reason", "failing_since"])

    def send_test(self, user: Any = None) -> Event:
        """Queue a test event for this channel alone; the worker sends it within seconds."""
        return Event.objects.create(
            kind=EventKind.TEST,
            workspace=self.workspace,
            channel=self,
            text=f"Test notification from the video dashboard for {self.workspace.name}.",
        )


def hint(kind: str, target: str) -> str:
    """What the page shows of a target once saved: the addresses of an email channel; of a
    URL, its host and the last four characters (the rest may be a token)."""
    if not target:
        return ""
    if kind == NotificationChannel.Kind.EMAIL:
        return target[:300]
    try:
        host = urlsplit(target).hostname or "?"
    except ValueError:
        host = "?"
    return f"{host} …{target[-4:]}" if len(target) > 12 else host


class EventQuerySet(models.QuerySet):
    def to_fan_out(self) -> EventQuerySet:
        """Events not yet turned into deliveries, oldest first (uses event_fan_out)."""
        return self.filter(fanned_out=False).order_by("created_at", "pk")


class Event(models.Model):
    """Something channels may hear of. Written by the poller (a task finished or failed),
    the key-refusal block, the worker's silence check, and the Send test button."""

    event_id = models.CharField(max_length=40, unique=True, default=new_event_id, editable=False)
    kind = models.CharField(max_length=40, choices=EventKind.choices)
    # None: deployment-wide (the worker, the deployment's own provider): every workspace.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    task = models.ForeignKey(
        "videos.VideoTask", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Who the task's news is about: an "only my tasks" channel compares its creator to it.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # A test event is for this channel alone.
    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    text = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    fanned_out = models.BooleanField(default=False)

    objects = EventQuerySet.as_manager()

    class Meta:
        indexes = [
            # EventQuerySet.to_fan_out, every round of the deliver job.
            models.Index(fields=["created_at"], condition=Q(fanned_out=False), name="event_fan_out"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_id}"


class DeliveryQuerySet(models.QuerySet):
    def due(self, now: datetime) -> DeliveryQuerySet:
        """Pending deliveries whose attempt time has come, on enabled channels (uses
        delivery_due)."""
        return self.filter(
            status=Delivery.Status.PENDING, next_attempt_at__lte=now, channel__enabled=True
        ).order_by("next_attempt_at", "pk")


class Delivery(models.Model):
    """One event to one channel, tried until it succeeds or DELIVERY_WINDOW has passed."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        GAVE_UP = "gave_up", "Gave up"

    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "event"], name="delivery_once_per_channel")]
        indexes = [
            # DeliveryQuerySet.due, every round of the deliver job.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} to channel {self.channel_id}: {self.status}"


class Attempt(models.Model):
    """The delivery log a channel's page shows: one row per try."""

    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="attempts")
    delivery = models.ForeignKey(Delivery, on_delete=models.SET_NULL, null=True, related_name="log")
    at = models.DateTimeField(default=timezone.now)
    event_kind = models.CharField(max_length=40)
    event_id = models.CharField(max_length=40)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["channel", "-at"], name="attempt_log")]

    def __str__(self) -> str:
        return f"{self.event_kind} {self.event_id}: {'ok' if self.ok else 'failed'}"
