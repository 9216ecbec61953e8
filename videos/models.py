from __future__ import annotations

import hashlib
import hmac
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, connections, models, router, transaction
from django.db.models import F, Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from teams.models import AuditEntry, Membership, ProviderConnection, Workspace
from teams.roles import Role

if TYPE_CHECKING:
    from videos.normalize import Snapshot

# The contract names the team models here too (they live in the teams app).
__all__ = [
    "AuditEntry",
    "Membership",
    "ProviderConnection",
    "Role",
    "Workspace",
]


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


ACTIVE_STATUSES = (Status.PENDING, Status.PROCESSING)
TERMINAL_STATUSES = (Status.COMPLETED, Status.FAILED)

# After this many "not found" answers in a row a task fails: gateways are eventually
# consistent, so a fresh task can be unknown for a moment.
NOT_FOUND_LIMIT = 3
# Progress events are recorded when a task crosses one of these, not on every poll.
PROGRESS_MILESTONES = (25, 50, 75)

NOT_FOUND_CODE = "task_not_found"


class KeepState(models.TextChoices):
    WAITING = "waiting", "Waiting to copy"
    COPYING = "copying", "Copying"
    KEPT = "kept", "Kept"
    FAILED = "failed", "Copy failed"
    REMOVED = "removed", "Removed after retention"


class VideoTaskQuerySet(models.QuerySet):
    def update(self, **fields: Any) -> int:
        """QuerySet.update, and when any of `fields` is one a page shows
        (VideoTask.DISPLAYED_FIELDS) it also bumps changed_at, so open pages pick the change
        up on their next refresh however it was made: the worker, the keeper, a view, the
        admin or a data fix in a shell. Bookkeeping-only writes stay silent."""
        if not shows_a_change(fields):
            return super().update(**fields)
        fields.setdefault("changed_at", timezone.now())
        with transaction.atomic(using=self.db):
            workspaces = set(self.order_by().values_list("workspace_id", flat=True).distinct())
            updated = super().update(**fields)
            Workspace.objects.bump(workspaces)
        return updated

    def bulk_create(self, objs: Iterable[VideoTask], *args: Any, **kwargs: Any) -> list[VideoTask]:
        """QuerySet.bulk_create, filing tasks made without a workspace in their owner's
        personal one (as save() does), and telling those workspaces' boards."""
        objs = list(objs)
        personal: dict[Any, Workspace] = {}
        for task in objs:
            if task.workspace_id is None and task.owner_id is not None:
                if task.owner_id not in personal:
                    personal[task.owner_id] = Workspace.objects.personal_for(task.owner)
                task.workspace = personal[task.owner_id]
        with transaction.atomic(using=self.db):
            created = super().bulk_create(objs, *args, **kwargs)
            Workspace.objects.bump({task.workspace_id for task in objs}, roster=True)
        return created

    def visible_to(self, user: Any) -> VideoTaskQuerySet:
        """The tasks this user may see: those of every workspace they belong to. Every page
        lookup starts here (teams.access.task_for); a board narrows it to one workspace."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(workspace__memberships__user=user)

    def in_workspace(self, workspace: Any) -> VideoTaskQuerySet:
        """One workspace's tasks: a board, its counts and its live refresh."""
        return self.filter(workspace=workspace)

    def active(self) -> VideoTaskQuerySet:
        """Tasks the provider has not finished yet."""
        return self.filter(status__in=ACTIVE_STATUSES)

    def terminal(self) -> VideoTaskQuerySet:
        return self.filter(status__in=TERMINAL_STATUSES)

    def due(self, now: datetime | None = None) -> VideoTaskQuerySet:
        """Tasks to poll now: not terminal, not stopped, and next_poll_at unset or passed.

        Shaped like the partial index `videotask_due` so the poller's query stays cheap
        however many finished tasks pile up.
        """
        now = now or timezone.now()
        return self.filter(status__in=ACTIVE_STATUSES, polling_stopped=False).filter(
            Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)
        )

    def kept_storage(self) -> dict[str, int]:
        """How many videos are kept and how many bytes they take, in one query."""
        row = self.filter(keep_state=KeepState.KEPT).aggregate(
            videos=models.Count("pk"), size=models.Sum("kept_bytes")
        )
        return {"videos": row["videos"], "bytes": row["size"] or 0}

    def matching(self, text: str) -> VideoTaskQuerySet:
        """Tasks whose ID, label or model contains `text` (case-insensitive)."""
        return self.filter(Q(task_id__icontains=text) | Q(label__icontains=text) | Q(model__icontains=text))

    def status_counts(self) -> dict[str, int]:
        """{status: count} for every status, zeros included, in one grouped query."""
        counts = dict.fromkeys(Status.values, 0)
        for row in self.order_by().values("status").annotate(n=models.Count("pk")):
            counts[row["status"]] = row["n"]
        return counts

    def request_spend(self) -> dict[str, float | int]:
        """How many requests these tasks cost: count, mean, median, 95th percentile, max.

        Read on finished tasks, it says what polling one video to the end costs.
        """
        spent = sorted(self.order_by().values_list("poll_count", flat=True))
        if not spent:
            return {"tasks": 0, "mean": 0.0, "median": 0, "p95": 0, "max": 0}
        return {
            "tasks": len(spent),
            "mean": sum(spent) / len(spent),
            "median": spent[len(spent) // 2],
            "p95": spent[min(len(spent) - 1, int(len(spent) * 0.95))],
            "max": spent[-1],
        }

    def track(
        self,
        owner: Any,
        entries: list[tuple[str, str]],
        note: str = "",
        *,
        workspace: Workspace | None = None,
        connection: ProviderConnection | None = None,
    ) -> tuple[list[VideoTask], list[str]]:
        """Start tracking (task_id, label) pairs in `workspace` (default: the owner's
        personal one) on `connection` (None: the deployment's own), added by `owner`.

        Returns the tasks created and the IDs the workspace already tracked (reported, not
        duplicated). New tasks have no next_poll_at, so the worker polls them at once.

        Safe against a concurrent call with the same IDs (a double-clicked form, two tabs):
        each task goes in with its event in a transaction of its own (a savepoint inside a
        caller's), so no call holds one row while it waits for another (no deadlock), and
        a task the unique constraint refuses because the other call inserted it first
        counts as already tracked.
        """
        workspace = workspace or Workspace.objects.personal_for(owner)
        wanted = list(dict.fromkeys(task_id for task_id, _ in entries))
        labels = dict(reversed(entries))
        existing = set(self.filter(workspace=workspace, task_id__in=wanted).values_list("task_id", flat=True))
        now = timezone.now()
        created = []
        for task_id in wanted:
            if task_id in existing:
                continue
            try:
                with transaction.atomic():
                    task = VideoTask.objects.create(
                        owner=owner,
                        workspace=workspace,
                        connection=connection,
                        task_id=task_id,
                        label=labels[task_id][:200],
                        created_at=now,
                    )
                    TaskEvent.objects.create(
                        task=task, at=now, kind=TaskEvent.Kind.TRACKED, status=task.status, message=note
                    )
            except IntegrityError:
                existing.add(task_id)
                continue
            created.append(task)
        return created, [task_id for task_id in wanted if task_id in existing]

    def on_connections(
        self, *, only: Iterable[int | None] | None = None, exclude: Iterable[int | None] = ()
    ) -> VideoTaskQuerySet:
        """Tasks polled on the given connections (`only`), or on any but `exclude`; None in
        either stands for the deployment's own connection (a null `connection`)."""
        queryset = self
        if only is not None:
            only = set(only)
            ids = [pk for pk in only if pk is not None]
            match = Q(connection_id__in=ids) if ids else Q(pk__in=[])
            queryset = queryset.filter(match | Q(connection__isnull=True) if None in only else match)
        exclude = set(exclude)
        if ids := [pk for pk in exclude if pk is not None]:
            # Keeps the null rows: Django puts "IS NOT NULL" inside the NOT (a test pins it).
            queryset = queryset.exclude(connection_id__in=ids)
        if None in exclude:
            queryset = queryset.filter(connection__isnull=False)
        return queryset

    def claim_due(
        self,
        limit: int,
        lease: timedelta,
        *,
        due_before: datetime | None = None,
        only_connections: Iterable[int | None] | None = None,
        exclude_connections: Iterable[int | None] = (),
    ) -> list[VideoTask]:
        """Lease up to `limit` due tasks to the caller and return them.

        A claimed task's next_poll_at becomes the lease deadline, so a worker that dies
        mid-poll hands its tasks back simply by not answering: they fall due again when
        the lease runs out. The lease token fences writes from a worker whose lease has
        expired meanwhile. On PostgreSQL, SKIP LOCKED lets several workers claim at once
        without waiting on each other.

        `only_connections` / `exclude_connections` (see `on_connections`) keep the tasks
        of a paused or blocked connection where they are: an extra condition on the rows
        the `videotask_due` index finds, in the same order.
        """
        now = timezone.now()
        token = uuid.uuid4()
        with transaction.atomic():
            ids = list(
                self.due(min(due_before or now, now))
                .on_connections(only=only_connections, exclude=exclude_connections)
                .order_by(F("next_poll_at").asc(nulls_first=True), "pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:limit]
            )
            if not ids:
                return []
            self.filter(pk__in=ids).update(lease_token=token, next_poll_at=now + lease)
        # The last raw payload is only ever overwritten by the poller, never read by it:
        # leave it in the database rather than decode a JSON blob per task per poll.
        return list(self.filter(pk__in=ids, lease_token=token).defer("raw_payload"))

    def release(
        self,
        token: uuid.UUID,
        pks: list[int],
        next_poll_at: datetime | None,
        *,
        spread: timedelta = timedelta(0),
        rng: Callable[[], float] = random.random,
    ) -> int:
        """Hand leased tasks back unpolled, due again at `next_poll_at`, or each at a random
        time within `spread` after it (one UPDATE either way), so that tasks held back
        together do not all fall due in the same second."""
        when: Any = next_poll_at
        if next_poll_at is not None and spread > timedelta(0) and pks:
            when = models.Case(
                *(models.When(pk=pk, then=models.Value(next_poll_at + spread * rng())) for pk in pks),
                output_field=models.DateTimeField(),
            )
        return self.filter(pk__in=pks, lease_token=token).update(lease_token=None, next_poll_at=when)

    def save_poll_results(self, results: list[tuple[VideoTask, set[str], list[TaskEvent]]]) -> set[int]:
        """Write a batch of poll outcomes in one transaction: for each task only its changed
        `fields`, only while its lease holds (the token it was claimed with), never over a
        terminal state. Returns the pks written; a fenced-off task (lease lost, or finished
        meanwhile) is skipped and its events are not recorded.

        This is the worker's hot path (hundreds of tasks a second), so instead of one
        ORM-compiled UPDATE per task it locks the batch's rows once, checks the fence in
        Python, and sends one parameterised UPDATE per distinct set of changed fields
        (`executemany`): usually one or two statements for the whole batch.
        """
        if not results:
            return set()
        now = timezone.now()
        by_pk = {task.pk: task for task, _fields, _events in results}
        with transaction.atomic():
            current = self.filter(pk__in=by_pk).select_for_update().values_list("pk", "lease_token", "status")
            written = {
                pk
                for pk, token, status in current
                if token is not None and token == by_pk[pk].lease_token and status in ACTIVE_STATUSES
            }
            groups: dict[frozenset[str], list[VideoTask]] = {}
            for task, fields, _events in results:
                if task.pk not in written:
                    continue
                if shows_a_change(fields):
                    task.changed_at = now
                    fields = fields | {"changed_at"}
                groups.setdefault(frozenset(fields), []).append(task)
            for fields, tasks in groups.items():
                _update_fields(tasks, sorted(fields))
            Workspace.objects.bump(
                {
                    task.workspace_id
                    for fields, tasks in groups.items()
                    if "changed_at" in fields
                    for task in tasks
                }
            )
            events = [
                event for task, _f, task_events in results if task.pk in written for event in task_events
            ]
            if events:
                TaskEvent.objects.bulk_create(events)
            finished = [by_pk[pk] for pk in written if by_pk[pk].status in TERMINAL_STATUSES]
            if finished:
                # Notifications: one INSERT after the commit; channels are the worker's business.
                from notifications.events import enqueue_task_events

                transaction.on_commit(lambda: enqueue_task_events(finished), robust=True)
        for pk in written:
            by_pk[pk].lease_token = None
        return written

    def poll_soon(self) -> int:
        """Make these tasks due now, resuming the ones an operator stopped; finished tasks stay
        as they are. Returns how many will be polled."""
        active = self.filter(status__in=ACTIVE_STATUSES)
        # Resuming shows on the task page; making a task due does not (two UPDATEs, so that
        # asking again about a running task does not wake every open page).
        active.filter(polling_stopped=True).update(polling_stopped=False)
        return active.update(next_poll_at=timezone.now(), lease_token=None)


class VideoTask(models.Model):
    # The workspace the task belongs to (everyone in it sees it) and the person who added it.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="tasks")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="video_tasks",
        help_text="Who added the task.",
    )

    # How it was added: from the dashboard, by a script through the JSON API (with which
    # key: `owner` is the person who made the key), or by a provider's webhook (`owner` is
    # the connection's creator). The board shows the key's or the connection's name.
    class AddedVia(models.TextChoices):
        WEB = "web", "Dashboard"
        API = "api", "API key"
        HOOK = "hook", "Provider webhook"

    added_via = models.CharField(max_length=8, choices=AddedVia.choices, default=AddedVia.WEB)
    api_key = models.ForeignKey(
        "api.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    # The provider it is polled on; None is the deployment's own (VIDEO_API_BASE_URL).
    # RESTRICT: a connection with tasks is not removed from under them (it would send their
    # IDs to another provider), but goes with its workspace.
    connection = models.ForeignKey(
        ProviderConnection, on_delete=models.RESTRICT, null=True, blank=True, related_name="tasks"
    )
    task_id = models.CharField("task ID", max_length=255)
    label = models.CharField(max_length=200, blank=True)

    # What the provider last said, normalised (see normalize.py).
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    raw_status = models.CharField(max_length=64, blank=True, help_text="The provider's own status word.")
    progress = models.PositiveSmallIntegerField(default=0)
    model = models.CharField(max_length=100, blank=True)
    seconds = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    size = models.CharField(max_length=32, blank=True)
    url = models.URLField(max_length=2048, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    remote_created_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    raw_payload = models.JSONField(null=True, blank=True, help_text="The last JSON object the provider sent.")
    # When the provider was first seen processing, and the finish that progress so far
    # points to (see estimate_finish); shown as "ETA", and used to poll near the end.
    processing_started_at = models.DateTimeField(null=True, blank=True)
    eta_at = models.DateTimeField("ETA", null=True, blank=True)

    # The poller's bookkeeping.
    last_polled_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    poll_count = models.PositiveIntegerField(default=0, help_text="Requests spent on this task.")
    consecutive_errors = models.PositiveIntegerField(default=0)
    not_found_count = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField("last poll error", max_length=500, blank=True)
    polling_stopped = models.BooleanField(default=False)
    # Set when the video was made from another one through the dashboard's remix.
    remixed_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="remixes"
    )
    # Set when someone deleted the video at the provider from the dashboard.
    remote_deleted_at = models.DateTimeField(null=True, blank=True)

    # The kept copy: the worker copies a finished video into our storage before the
    # provider's link expires (see keep.py). Its own small state machine.
    keep_state = models.CharField(max_length=16, choices=KeepState.choices, blank=True)
    kept_file = models.FileField(upload_to="kept/videos/", max_length=300, blank=True)
    kept_thumbnail = models.FileField(upload_to="kept/thumbnails/", max_length=300, blank=True)
    kept_bytes = models.PositiveBigIntegerField(default=0)
    kept_at = models.DateTimeField(null=True, blank=True)
    keep_error = models.CharField(max_length=500, blank=True)
    keep_attempts = models.PositiveSmallIntegerField(default=0)
    next_keep_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Bumped whenever something a person sees changes (not on every poll), so a live page
    # can ask "anything new since X?" with one indexed query.
    changed_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = VideoTaskQuerySet.as_manager()

    # What the pages show of a task: the dashboard's row and the task page. Writing any of
    # these bumps changed_at (save(), QuerySet.update, save_poll_results), which is what an
    # open page's refresh compares (through Workspace.bump and live_token). The other
    # fields are bookkeeping (the poll schedule, lease, counters, the raw payload) and a
    # write of only those stays silent, so an idle page's refresh stays empty.
    #
    # What the provider's answers set, in the order the admin shows it.
    PROVIDER_FIELDS = (
        "status",
        "raw_status",
        "progress",
        "model",
        "seconds",
        "size",
        "url",
        "error_code",
        "error_message",
        "metadata",
        "remote_created_at",
        "completed_at",
        "expires_at",
        "processing_started_at",
        "eta_at",
    )
    # Where the kept copy stands, as the pages show it.
    KEPT_FIELDS = ("keep_state", "kept_file", "kept_thumbnail", "kept_bytes", "kept_at", "keep_error")
    DISPLAYED_FIELDS = frozenset(
        {
            "task_id",
            "label",
            "owner",
            "connection",
            *PROVIDER_FIELDS,
            "last_error",
            "polling_stopped",
            "remixed_from",
            "remote_deleted_at",
            *KEPT_FIELDS,
        }
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # Two workspaces may track the same ID, each on its own.
            models.UniqueConstraint(fields=["workspace", "task_id"], name="videotask_unique_per_workspace"),
        ]
        indexes = [
            # The poller's "what is due" query (VideoTaskQuerySet.due / claim_due).
            models.Index(
                fields=["next_poll_at"],
                name="videotask_due",
                condition=Q(status__in=ACTIVE_STATUSES, polling_stopped=False),
            ),
            # A board: one workspace's tasks, newest first (keyset pagination)...
            models.Index(fields=["workspace", "-created_at", "-id"], name="videotask_board_recent"),
            # ... and the "added by" filter of a board ("mine", a given member).
            models.Index(fields=["workspace", "owner", "-created_at", "-id"], name="videotask_board_owner"),
            # A board's counts per status (status_counts), read from the index alone.
            models.Index(fields=["workspace", "status"], name="videotask_board_status"),
            # A board's kept-copies total (kept_storage): only the kept rows, not the board.
            models.Index(
                fields=["workspace", "kept_bytes"],
                name="videotask_board_kept",
                condition=Q(keep_state="kept"),
            ),
            # The keeper's "what is due to copy" query (keep.py).
            models.Index(
                fields=["next_keep_at"],
                name="videotask_keep_due",
                condition=Q(keep_state__in=["waiting", "copying", "failed"]),
            ),
        ]

    def __str__(self) -> str:
        return self.label or self.task_id

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Model.save, bumping changed_at when the write changes a displayed field: one
        named in `update_fields`, or, for a full save, one that differs from the row."""
        update_fields = kwargs.get("update_fields")
        adding = self._state.adding
        changed = adding
        if self.workspace_id is None and self.owner_id is not None:
            # Scripts, fixtures and older code create tasks without a workspace.
            self.workspace = Workspace.objects.personal_for(self.owner)
        if update_fields is not None:
            if shows_a_change(update_fields):
                self.changed_at = timezone.now()
                kwargs["update_fields"] = {*update_fields, "changed_at"}
                changed = True
        elif not adding and self._differs_from_row(kwargs.get("using")):
            self.changed_at = timezone.now()
            changed = True
        with transaction.atomic(using=kwargs.get("using")):
            super().save(*args, **kwargs)
            if changed:
                Workspace.objects.bump([self.workspace_id], roster=adding)

    def _differs_from_row(self, using: str | None) -> bool:
        # A full save comes from the admin, a shell or a data fix, never from the worker:
        # one query to compare with what is stored costs nothing that matters.
        deferred = self.get_deferred_fields()
        names = [
            field.attname
            for field in self._meta.concrete_fields
            if field.name in self.DISPLAYED_FIELDS and field.attname not in deferred
        ]
        stored = (
            VideoTask._base_manager.using(using or self._state.db).filter(pk=self.pk).values(*names).first()
        )
        return stored is None or any(getattr(self, name) != stored[name] for name in names)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def link_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def download_url(self) -> str:
        """The provider's direct link, only if it is http(s) and not yet expired; else ""."""
        if self.status != Status.COMPLETED or self.link_expired:
            return ""
        return self.url if urlsplit(self.url).scheme.lower() in ("http", "https") else ""

    @property
    def is_settled(self) -> bool:
        """Nothing more will change by itself: finished, and no copy on its way to storage."""
        return self.is_terminal and self.keep_state not in (KeepState.WAITING, KeepState.COPYING)

    @property
    def is_kept(self) -> bool:
        return self.keep_state == KeepState.KEPT and bool(self.kept_file)

    @property
    def can_download(self) -> bool:
        """Whether the dashboard can serve the video: from its kept copy, or else from the
        provider while the video exists there and its link (if it has an expiry) lives."""
        if self.is_kept:
            return True
        return self.status == Status.COMPLETED and not self.remote_deleted_at and not self.link_expired

    @property
    def is_retrying(self) -> bool:
        return not self.is_terminal and bool(self.last_error)

    def live_token(self) -> str:
        """Changes whenever the task page would show something new (including "last checked")."""
        polled = self.last_polled_at.isoformat() if self.last_polled_at else "-"
        return f"{self.changed_at.isoformat()}~{polled}"

    def phase_durations(self, events: list[TaskEvent]) -> dict[str, timedelta]:
        """How long the task waited in the queue and how long it processed, from its timeline."""
        started = events[0].at if events else self.created_at
        processing_at = finished_at = None
        for event in events:
            if event.kind != TaskEvent.Kind.STATUS:
                continue
            if event.status == Status.PROCESSING and processing_at is None:
                processing_at = event.at
            if event.status in TERMINAL_STATUSES:
                finished_at = event.at
        now = timezone.now()
        durations = {}
        if processing_at:
            durations["queued"] = processing_at - started
            durations["processing"] = (finished_at or now) - processing_at
        elif finished_at:
            durations["queued"] = finished_at - started
        else:
            durations["queued"] = now - started
        if finished_at:
            durations["total"] = finished_at - started
        return durations

    def apply_snapshot(self, snapshot: Snapshot, now: datetime) -> tuple[set[str], list[TaskEvent]]:
        """Fold a normalised provider answer into this task, in memory.

        Returns the names of the fields that changed and the timeline events to record.
        A terminal task never changes; progress never goes down; an unknown status word
        keeps the current state but is stored raw.
        """
        if self.is_terminal:
            return set(), []
        changed: set[str] = set()
        events: list[TaskEvent] = []

        def put(field: str, value: Any, *, clear: bool = False) -> None:
            if isinstance(value, str):
                value = _fit(field, value)
            if (value is not None or clear) and getattr(self, field) != value:
                setattr(self, field, value)
                changed.add(field)

        previous_status, previous_progress = self.status, self.progress
        new_status = snapshot.status or self.status
        put("raw_status", snapshot.raw_status)
        put("status", new_status)
        progress = snapshot.progress
        if new_status == Status.COMPLETED:
            progress = 100
        if progress is not None and progress > self.progress:
            put("progress", progress)
        for field in ("model", "size", "url", "metadata", "remote_created_at", "expires_at"):
            put(field, getattr(snapshot, field))
        if snapshot.seconds is not None:
            put("seconds", Decimal(snapshot.seconds).quantize(Decimal("0.01")))
        if new_status == Status.FAILED:
            put("error_code", snapshot.error_code or "")
            put("error_message", snapshot.error_message or "")
        elif snapshot.error_message or snapshot.error_code:
            # Some gateways attach a warning to a running task; keep it visible.
            put("error_code", snapshot.error_code or "")
            put("error_message", snapshot.error_message or "")
        if new_status in TERMINAL_STATUSES:
            # Some gateways fill completed_at while still running: only trust it now.
            put("completed_at", snapshot.completed_at or now)
            put("eta_at", None, clear=True)
        elif new_status == Status.PROCESSING:
            if self.processing_started_at is None:
                put("processing_started_at", now)
            if self.progress != previous_progress:
                put("eta_at", self.estimate_finish(now))

        if self.status != previous_status:
            events.append(self._event(TaskEvent.Kind.STATUS, now, previous_status=previous_status))
        elif self.progress != previous_progress:
            crossed = [m for m in PROGRESS_MILESTONES if previous_progress < m <= self.progress]
            if crossed:
                events.append(self._event(TaskEvent.Kind.PROGRESS, now, previous_status=previous_status))
        return changed, events

    def estimate_finish(self, now: datetime) -> datetime | None:
        """When the job should finish if it keeps the pace it has had since it started
        processing; None while progress is too small to say (early numbers are noise)."""
        if self.processing_started_at is None or not 5 <= self.progress < 100:
            return None
        elapsed = now - self.processing_started_at
        if elapsed < timedelta(seconds=5):
            return None
        return self.processing_started_at + elapsed * (100 / self.progress)

    def apply_not_found(self, now: datetime) -> tuple[set[str], list[TaskEvent]]:
        """Count a "not found" answer; the task fails only after NOT_FOUND_LIMIT in a row."""
        if self.is_terminal:
            return set(), []
        self.not_found_count += 1
        changed = {"not_found_count"}
        if self.not_found_count < NOT_FOUND_LIMIT:
            return changed, []
        previous_status = self.status
        self.status = Status.FAILED
        self.error_code = NOT_FOUND_CODE
        self.error_message = (
            f"The provider answered {self.not_found_count} times in a row that it does not know this task."
        )
        self.completed_at = now
        changed |= {"status", "error_code", "error_message", "completed_at"}
        return changed, [self._event(TaskEvent.Kind.STATUS, now, previous_status=previous_status)]

    def _event(self, kind: str, now: datetime, *, previous_status: str = "", message: str = "") -> TaskEvent:
        return TaskEvent(
            task=self,
            at=now,
            kind=kind,
            status=self.status,
            previous_status=previous_status,
            progress=self.progress,
            message=message or (self.error_message[:500] if self.status == Status.FAILED else ""),
        )

    def stop_polling(self) -> None:
        """Admin action: keep the task but never ask the provider about it again."""
        VideoTask.objects.filter(pk=self.pk).update(polling_stopped=True, lease_token=None)
        TaskEvent.objects.create(
            task=self, kind=TaskEvent.Kind.NOTE, status=self.status, message="Polling stopped."
        )

    def mark_deleted_at_provider(self) -> None:
        """The video no longer exists at the provider: stop asking, drop the dead link."""
        now = timezone.now()
        VideoTask.objects.filter(pk=self.pk).update(
            remote_deleted_at=now, polling_stopped=True, lease_token=None, url=""
        )
        TaskEvent.objects.create(
            task=self,
            at=now,
            kind=TaskEvent.Kind.NOTE,
            status=self.status,
            message="Deleted at the provider from the dashboard.",
        )

    def poll_soon(self) -> bool:
        """Make the task due now (resuming it if it was stopped); a terminal task stays as it is.
        Returns whether the task will be polled."""
        return VideoTask.objects.filter(pk=self.pk).poll_soon() == 1


# The displayed fields by name and by attname (`remixed_from_id`): save() and update() take either.
_DISPLAYED_NAMES = VideoTask.DISPLAYED_FIELDS | {
    VideoTask._meta.get_field(name).attname for name in VideoTask.DISPLAYED_FIELDS
}


def shows_a_change(fields: Iterable[str]) -> bool:
    """Whether writing `fields` of a VideoTask changes what a page shows."""
    return not _DISPLAYED_NAMES.isdisjoint(fields)


def _fit(field: str, text: str) -> str:
    """`text` cut to the column of VideoTask.`field`: everything a provider says goes
    through here on its way to a task, so no value of theirs can be too long to save
    (PostgreSQL refuses it with a DataError; SQLite would silently keep it whole)."""
    limit = VideoTask._meta.get_field(field).max_length
    return text[:limit] if limit is not None and len(text) > limit else text


def _update_fields(tasks: list[VideoTask], names: list[str]) -> None:
    """UPDATE `names` (and clear the lease) on each of `tasks`, in one executemany.

    Values go through each field's own get_db_prep_save, exactly as QuerySet.update would
    convert them; only the statement is built once for the whole group.
    """
    meta = VideoTask._meta
    fields = [meta.get_field(name) for name in names]
    connection = connections[router.db_for_write(VideoTask)]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = (
        # Identifiers come from the model and are quoted; every value is a parameter.
        f"UPDATE {quote(meta.db_table)} SET {assignments}, {quote('lease_token')} = NULL "  # noqa: S608
        f"WHERE {quote(meta.pk.column)} = %s"
    )
    rows = [
        [field.get_db_prep_save(getattr(task, field.attname), connection) for field in fields] + [task.pk]
        for task in tasks
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


class TaskEvent(models.Model):
    """One step of a task's timeline: a change of status, a progress milestone, a note."""

    class Kind(models.TextChoices):
        TRACKED = "tracked", "Tracked"
        STATUS = "status", "Status changed"
        PROGRESS = "progress", "Progress"
        NOTE = "note", "Note"

    task = models.ForeignKey(VideoTask, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, blank=True)
    previous_status = models.CharField(max_length=16, choices=Status.choices, blank=True)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["task", "at"], name="taskevent_timeline")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M:%S}"


class SubmissionQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> SubmissionQuerySet:
        """Attempts in the workspaces this user belongs to."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(workspace__memberships__user=user)

    def to_reconcile(self, now: datetime) -> SubmissionQuerySet:
        """Creates whose answer was lost, due for another look at the provider's list."""
        return self.filter(state=Submission.State.UNKNOWN, next_reconcile_at__lte=now)


class Submission(models.Model):
    """One attempt to start a video from the dashboard: a create, or a remix.

    A create is never sent twice (a second POST is a second billed video). When its answer
    is lost the attempt becomes "unknown", and the worker looks for the video in the
    provider's list instead (videos.submissions.reconcile).
    """

    class State(models.TextChoices):
        SENDING = "sending", "Sending"
        CREATED = "created", "Created"
        UNKNOWN = "unknown", "Submission unknown"
        REJECTED = "rejected", "Refused"
        NOT_CREATED = "not_created", "Not created"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="submissions")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions")
    # The provider it was sent to; None is the deployment's own.
    connection = models.ForeignKey(
        ProviderConnection, on_delete=models.RESTRICT, null=True, blank=True, related_name="submissions"
    )
    prompt = models.TextField()
    model = models.CharField(max_length=100, blank=True)
    seconds = models.CharField(max_length=16, blank=True)
    size = models.CharField(max_length=32, blank=True)
    reference_name = models.CharField(max_length=200, blank=True)
    remix_of = models.ForeignKey(
        VideoTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.SENDING)
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)
    task = models.ForeignKey(
        VideoTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="submissions"
    )
    # The failed task this attempt retries with the same settings: its page says "Retried
    # as …" and the new task's "Retry of …". Kept here rather than on the task, so a retry
    # whose answer was lost still links once the worker finds its video.
    retry_of = models.ForeignKey(
        VideoTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="retries"
    )
    reconcile_attempts = models.PositiveSmallIntegerField(default=0)
    next_reconcile_at = models.DateTimeField(null=True, blank=True)

    objects = SubmissionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The worker's "unknown creates to look for" query (to_reconcile).
            models.Index(
                fields=["next_reconcile_at"], name="submission_reconcile", condition=Q(state="unknown")
            ),
        ]

    def __str__(self) -> str:
        return self.prompt[:60]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.workspace_id is None and self.owner_id is not None:
            self.workspace = Workspace.objects.personal_for(self.owner)
        super().save(*args, **kwargs)

    def mark_created(self, task: VideoTask) -> None:
        self.state = self.State.CREATED
        self.task = task
        self.answered_at = self.answered_at or timezone.now()
        self.next_reconcile_at = None
        self.save(update_fields=["state", "task", "answered_at", "next_reconcile_at"])

    def mark_refused(self, message: str, code: str = "") -> None:
        self.state = self.State.REJECTED
        self.error_message = message[:2000]
        self.error_code = code[:100]
        self.answered_at = timezone.now()
        self.save(update_fields=["state", "error_message", "error_code", "answered_at"])

    def mark_unknown(self, message: str, first_look: datetime) -> None:
        self.state = self.State.UNKNOWN
        self.error_message = message[:2000]
        self.answered_at = timezone.now()
        self.next_reconcile_at = first_look
        self.save(update_fields=["state", "error_message", "answered_at", "next_reconcile_at"])


class WorkerHeartbeatQuerySet(models.QuerySet):
    def latest_seen(self) -> datetime | None:
        return self.order_by().aggregate(latest=models.Max("last_seen_at"))["latest"]

    def overview(self, seen_since: datetime) -> tuple[datetime | None, list[dict]]:
        """In one query: when a worker was last seen, and the background jobs that keep
        failing on the running workers seen since `seen_since` (a stopped or silent worker
        runs no job), one dict per job and worker, oldest failure first. The banner and
        /healthz read it."""
        running = Q(stopped_at__isnull=True, last_seen_at__gte=seen_since)
        newest = self.order_by("-last_seen_at").values("last_seen_at")[:1]
        rows = list(
            self.filter(running | Q(last_seen_at=models.Subquery(newest)))
            .order_by("name")
            .values_list("name", "last_seen_at", "stopped_at", "failing_jobs")
        )
        latest = max((seen for _, seen, _, _ in rows), default=None)
        jobs = [
            {**job, "worker": name}
            for name, seen, stopped, failing in rows
            if stopped is None and seen >= seen_since
            for job in (failing or {}).values()
            if isinstance(job, dict)
        ]
        return latest, sorted(jobs, key=lambda job: str(job.get("since", "")))


class WorkerHeartbeat(models.Model):
    """One row per poll_videos process: when it was last alive and what it has done.

    The dashboard and /healthz read it to say whether polling is happening at all.
    """

    name = models.CharField(max_length=200, unique=True, help_text="host:pid")
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    passes = models.PositiveBigIntegerField(default=0)
    tasks_polled = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # Jobs that keep failing (see videos.worker), by job name, as of the last beat: what
    # the job does, failures in a row, since when, and the last error. Empty when all is well.
    failing_jobs = models.JSONField(default=dict, blank=True)

    objects = WorkerHeartbeatQuerySet.as_manager()

    class Meta:
        verbose_name = "worker"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def beat(
        cls,
        name: str,
        *,
        started_at: datetime,
        passes: int,
        polled: int,
        errors: int,
        failing_jobs: dict | None = None,
    ) -> None:
        """Record that worker `name` is alive, adding to its counters, with the jobs that
        keep failing right now (replacing the previous list)."""
        now = timezone.now()
        failing_jobs = failing_jobs or {}
        updated = cls.objects.filter(name=name).update(
            last_seen_at=now,
            stopped_at=None,
            passes=F("passes") + passes,
            tasks_polled=F("tasks_polled") + polled,
            errors=F("errors") + errors,
            failing_jobs=failing_jobs,
        )
        if not updated:
            cls.objects.create(
                name=name,
                started_at=started_at,
                last_seen_at=now,
                passes=passes,
                tasks_polled=polled,
                errors=errors,
                failing_jobs=failing_jobs,
            )

    @classmethod
    def mark_stopped(cls, name: str) -> None:
        cls.objects.filter(name=name).update(stopped_at=timezone.now())


def key_fingerprint(api_key: str) -> str:
    """A short, non-reversible tag for a key, so a change of key can be noticed without storing it."""
    return hmac.new(settings.SECRET_KEY.encode(), api_key.encode(), hashlib.sha256).hexdigest()[:16]


# The longest a 429 pauses a provider, whatever it asks for: one answer with
# "Retry-After: 86400" (a misconfigured gateway, or a hostile one) must not stop polling for
# every user for a day. A pause that ends is followed by one probe request, and a provider
# still limiting us answers that probe with another 429, which starts the pause over: so a
# long wait it really needs costs one request every MAX_PAUSE, not a stampede.
MAX_PAUSE = timedelta(minutes=15)


# Why a connection whose stored key no configured VIDEO_ENCRYPTION_KEYS decrypts is blocked
# (ProviderConnection.api_key raises Unreadable); with the ciphertext's fingerprint, so a key
# entered again lifts the block. Also what a download or a copy on it says.
UNREADABLE_KEY_REASON = (
    "The stored key can no longer be decrypted (VIDEO_ENCRYPTION_KEYS changed?); "
    "a manager must enter it again."
)


class ProviderState(models.Model):
    """What the poller knows about a provider as a whole: a rate-limit pause, or a block.

    A 429 pauses every request to the provider until `paused_until` (at most MAX_PAUSE
    ahead). When that time has passed the pause is not over yet: one worker takes the probe
    (`claim_probe`) and sends a single request; only when it is answered with something
    other than a 429 is `paused_until` cleared and polling resumes for all (`end_probe`).
    So `paused_until` reads: null, not paused; in the future, paused (or a probe in
    flight); in the past, a probe is due. Workers share this row through conditional
    UPDATEs, so one probe goes out however many workers run.

    A 401/403 (bad key) or an exhausted quota blocks it until the key changes (its
    fingerprint differs) or an operator resumes it from the admin.
    """

    # The deployment's own provider has one row by base URL (connection None); each
    # workspace connection has its own, so one team's pause or block never holds another's.
    base_url = models.CharField(max_length=500)
    connection = models.OneToOneField(
        ProviderConnection, on_delete=models.CASCADE, null=True, blank=True, related_name="state"
    )
    paused_until = models.DateTimeField(null=True, blank=True)
    blocked_reason = models.CharField(max_length=300, blank=True)
    blocked_at = models.DateTimeField(null=True, blank=True)
    blocked_key_fingerprint = models.CharField(max_length=16, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "provider"
        constraints = [
            models.UniqueConstraint(
                fields=["base_url"], condition=Q(connection__isnull=True), name="providerstate_default_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection.workspace}: {self.connection}" if self.connection_id else self.base_url

    @classmethod
    def for_connection(cls, connection: ProviderConnection | None, base_url: str) -> ProviderState:
        """The state row of `connection` (None: the deployment's own provider at `base_url`)."""
        if connection is None:
            state, _ = cls.objects.get_or_create(base_url=base_url, connection=None)
        else:
            state, _ = cls.objects.get_or_create(connection=connection, defaults={"base_url": base_url})
        return state

    def is_blocked_for(self, fingerprint: str) -> bool:
        return bool(self.blocked_reason) and self.blocked_key_fingerprint == fingerprint

    def is_paused(self, now: datetime) -> bool:
        return self.paused_until is not None and self.paused_until > now

    def probe_due(self, now: datetime) -> bool:
        """A pause has run out and no request has told yet whether the provider still limits us."""
        return self.paused_until is not None and self.paused_until <= now

    def pause_until(self, until: datetime, now: datetime | None = None, *, restart: bool = False) -> datetime:
        """Pause the provider until `until`, cut to MAX_PAUSE from now. A longer pause already
        running is kept, unless `restart` (the probe got a 429: the pause starts over).
        Returns when the pause now ends."""
        until = min(until, (now or timezone.now()) + MAX_PAUSE)
        if restart or self.paused_until is None or until > self.paused_until:
            self.paused_until = until
            self.save(update_fields=["paused_until", "updated_at"])
        return self.paused_until

    def claim_probe(self, now: datetime, hold: timedelta) -> datetime | None:
        """Take the probe that ends a pause, if it is due and no other worker took it first.

        The winner's conditional UPDATE moves `paused_until` to `now + hold`, so every other
        worker sees the provider paused while the probe is out, and a winner that dies frees
        the probe by letting the hold run out. Returns the hold's end when this caller won.
        """
        if not self.probe_due(now):
            return None
        hold_until = now + hold
        won = ProviderState.objects.filter(pk=self.pk, paused_until=self.paused_until).update(
            paused_until=hold_until, updated_at=now
        )
        if not won:
            self.refresh_from_db(fields=["paused_until"])
            return None
        self.paused_until = hold_until
        return hold_until

    def end_probe(self, hold_until: datetime, *, answered: bool) -> None:
        """The probe taken with `claim_probe` came back: `answered` without a 429, the pause
        is over; not sent after all, the probe is due again at once. A no-op when the hold
        is no longer this probe's (a 429 restarted the pause, or the hold ran out and
        another worker took over)."""
        now = timezone.now()
        value = None if answered else now
        if ProviderState.objects.filter(pk=self.pk, paused_until=hold_until).update(
            paused_until=value, updated_at=now
        ):
            self.paused_until = value

    def block(self, reason: str, fingerprint: str) -> None:
        self.blocked_reason = reason[:300]
        self.blocked_at = timezone.now()
        self.blocked_key_fingerprint = fingerprint
        self.save(update_fields=["blocked_reason", "blocked_at", "blocked_key_fingerprint", "updated_at"])
        from notifications.events import enqueue_key_refused

        enqueue_key_refused(self, self.blocked_reason)

    def resume(self) -> None:
        self.blocked_reason = ""
        self.blocked_at = None
        self.blocked_key_fingerprint = ""
        self.paused_until = None
        self.save(
            update_fields=[
                "blocked_reason",
                "blocked_at",
                "blocked_key_fingerprint",
                "paused_until",
                "updated_at",
            ]
        )


@receiver(post_delete, sender=VideoTask, dispatch_uid="videos.task_removed")
def _task_removed(sender: Any, instance: VideoTask, **kwargs: Any) -> None:
    # However a task goes (stop tracking, the admin, a cascade), its board hears of it.
    Workspace.objects.bump([instance.workspace_id], roster=True)


# The contract names the channel model from here; it lives in the notifications app.
from notifications.models import NotificationChannel  # noqa: E402, F401

__all__.append("NotificationChannel")
