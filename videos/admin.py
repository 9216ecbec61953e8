from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.timesince import timesince

from videos.models import ProviderState, Submission, TaskEvent, VideoTask, WorkerHeartbeat
from videos.worker_status import is_silent

# What the provider and the worker own: shown, never edited by hand, so the admin and the
# poller do not fight over them. Grouped as the change page shows them. Status and progress
# are the exception, for an operator's fix (a task stuck at the provider, marked failed):
# the poller never writes over a finished task, and progress only ever goes up.
PROVIDER_FIELDS = VideoTask.PROVIDER_FIELDS
KEPT_FIELDS = (
    *VideoTask.KEPT_FIELDS,
    "keep_attempts",
    "next_keep_at",
    "remixed_from",
    "remote_deleted_at",
)
POLLING_FIELDS = (
    "created_at",
    "last_polled_at",
    "next_poll_at",
    "poll_count",
    "consecutive_errors",
    "not_found_count",
    "last_error",
    "raw_payload",
)
OPERATOR_FIXES = ("status", "progress")
REMOTE_FIELDS = tuple(
    name for name in PROVIDER_FIELDS + KEPT_FIELDS + POLLING_FIELDS if name not in OPERATOR_FIXES
)


# How much of a task ID and of an error the changelist shows; the whole value is in the
# cell's tooltip and on the change page.
ID_CHARS = 18
ERROR_CHARS = 60


def shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ago(moment: Any, now: Any = None) -> str:
    """A past time as "3 minutes ago" (its largest unit only: a narrow column)."""
    if moment is None:
        return "never"
    return f"{timesince(moment, now or timezone.now(), depth=1)} ago"


class AtLeast(int):
    """A count that stopped counting: shown as "10,000+" wherever the admin prints it."""

    def __str__(self) -> str:
        return f"{int(self):,}+"


class CappedCountPaginator(Paginator):
    """Counts the rows of a list up to `cap` and no further, so a changelist costs the same
    at a hundred thousand tasks as at ten thousand: a COUNT of every filtered row reads them
    all (a sequential scan on PostgreSQL). Past the cap the list says "10,000+" and its
    pages stop there; filters, search and the date filter narrow it."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        counted = self.object_list[: self.cap + 1].count()
        return AtLeast(self.cap) if counted > self.cap else counted


class VideoTaskForm(forms.ModelForm):
    # The admin builds the form's Meta from its fieldsets (modelform_factory).

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        workspace, connection = cleaned.get("workspace"), cleaned.get("connection")
        # A task is polled with its connection's key: one of another workspace would spend
        # (and expose the task to) another team's provider account.
        if workspace is not None and connection is not None and connection.workspace_id != workspace.pk:
            self.add_error("connection", "Choose a connection of the task's workspace (or none).")
        return cleaned


class TaskEventInline(admin.TabularInline):
    model = TaskEvent
    fields = ("at", "kind", "previous_status", "status", "progress", "message")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("at", "pk")

    def has_add_permission(self, request: HttpRequest, obj: VideoTask | None = None) -> bool:
        return False


@admin.register(VideoTask)
class VideoTaskAdmin(admin.ModelAdmin):
    form = VideoTaskForm
    # Fits a 1280 px screen beside the filters: the ID shortened with its label under it, the
    # status as one short word, the error visible. The poll bookkeeping (next poll, counts,
    # stopped) is on the change page, under "Polling".
    list_display = ("task", "state", "progress", "error", "workspace", "added", "polled")
    # No "model" among the filters and no date_hierarchy: each reads every task of the
    # table (a DISTINCT model; a DISTINCT month through a Python function on SQLite, a second
    # at 100,000 tasks) on every load of the list. The date filter below costs no query, and
    # ?model=... still filters (a search matches the model too).
    list_filter = (
        "status",
        "workspace",
        "connection",
        "created_at",
        "keep_state",
        "polling_stopped",
        "owner",
    )
    search_fields = ("task_id", "label", "model", "owner__username", "owner__email")
    list_select_related = ("owner", "workspace", "connection")
    readonly_fields = REMOTE_FIELDS
    raw_id_fields = ("owner", "workspace", "connection")
    fieldsets = (
        (None, {"fields": ("workspace", "connection", "owner", "task_id", "label", "polling_stopped")}),
        ("From the provider", {"fields": PROVIDER_FIELDS}),
        ("Kept copy", {"fields": KEPT_FIELDS}),
        ("Polling", {"fields": POLLING_FIELDS}),
    )
    inlines = (TaskEventInline,)
    actions = ("poll_now", "stop_polling")
    paginator = CappedCountPaginator
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: VideoTask | None = None) -> tuple[str, ...]:
        # The identity of a tracked task is fixed once created; a new ID is a new task. So
        # are its workspace and connection: moved, its ID would go to another team's provider.
        if obj is not None:
            return (*REMOTE_FIELDS, "workspace", "connection", "owner", "task_id")
        return REMOTE_FIELDS

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "progress":
            kwargs["max_value"] = 100  # a percentage, as the pages show it
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: VideoTask, form: Any, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Only what the operator changed: the form's other values are as it loaded them, and
        # would write back over what the worker wrote meanwhile.
        obj.save(update_fields=form.changed_data)
        if "status" in form.changed_data:
            TaskEvent.objects.create(
                task=obj,
                kind=TaskEvent.Kind.STATUS,
                status=obj.status,
                previous_status=form.initial.get("status", ""),
                progress=obj.progress,
                message=f"Set in the admin by {request.user.get_username()}.",
            )

    class Media:
        css = {"all": ("admin/videos/changelist.css",)}

    @admin.display(description="task", ordering="task_id")
    def task(self, task: VideoTask) -> str:
        return format_html(
            '<span class="vt-id" title="{}">{}</span>{}',
            task.task_id,
            shortened(task.task_id, ID_CHARS),
            format_html('<span class="vt-label">{}</span>', shortened(task.label, 40)) if task.label else "",
        )

    @admin.display(description="status", ordering="status")
    def state(self, task: VideoTask) -> str:
        # "stopped" when the poller no longer asks about an unfinished task.
        stopped = task.polling_stopped and not task.is_terminal
        return format_html(
            '<span class="vt-status vt-{}">{}</span>',
            task.status,
            f"{task.status} · stopped" if stopped else task.status,
        )

    @admin.display(description="error")
    def error(self, task: VideoTask) -> str:
        # The provider's error first (why it failed), else the last poll's (why it is stuck).
        full = " ".join(part for part in (task.error_code, task.error_message) if part) or task.last_error
        if not full:
            return ""
        return format_html('<span class="vt-error" title="{}">{}</span>', full, shortened(full, ERROR_CHARS))

    @admin.display(description="added", ordering="created_at")
    def added(self, task: VideoTask) -> str:
        local = timezone.localtime(task.created_at)
        return format_html(
            '<span title="{}">{}</span>', local.isoformat(timespec="seconds"), date_format(local, "M j, H:i")
        )

    @admin.display(description="last polled", ordering="last_polled_at")
    def polled(self, task: VideoTask) -> str:
        if task.last_polled_at is None:
            return "never"
        return format_html(
            '<span title="{}">{}</span>',
            task.last_polled_at.isoformat(timespec="seconds"),
            ago(task.last_polled_at),
        )

    @admin.action(description="Poll now")
    def poll_now(self, request: HttpRequest, queryset: QuerySet[VideoTask]) -> None:
        count = queryset.poll_soon()
        self.message_user(request, f"{count} task(s) will be polled within seconds.", messages.SUCCESS)

    @admin.action(description="Stop polling")
    def stop_polling(self, request: HttpRequest, queryset: QuerySet[VideoTask]) -> None:
        tasks = list(queryset.filter(polling_stopped=False))
        for task in tasks:
            task.stop_polling()
        self.message_user(request, f"Polling stopped for {len(tasks)} task(s).", messages.SUCCESS)


@admin.register(TaskEvent)
class TaskEventAdmin(admin.ModelAdmin):
    list_display = ("at", "task", "kind", "previous_status", "status", "progress", "message")
    # A date filter rather than a date_hierarchy, and a capped count, as for tasks: events
    # outnumber tasks several times.
    list_filter = ("kind", "status", "at")
    search_fields = ("task__task_id", "task__label", "message")
    list_select_related = ("task",)
    raw_id_fields = ("task",)
    paginator = CappedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TaskEvent | None = None) -> bool:
        return False


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "workspace",
        "connection",
        "owner",
        "state",
        "model",
        "size",
        "seconds",
        "task",
        "reconcile_attempts",
    )
    list_filter = ("state", "workspace", "connection", "model")
    search_fields = ("prompt", "owner__username", "task__task_id")
    list_select_related = ("owner", "task", "workspace", "connection")
    show_full_result_count = False
    readonly_fields = (
        "workspace",
        "connection",
        "owner",
        "prompt",
        "model",
        "seconds",
        "size",
        "reference_name",
        "remix_of",
        "state",
        "error_code",
        "error_message",
        "created_at",
        "answered_at",
        "task",
        "reconcile_attempts",
        "next_reconcile_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "state",
        "last_seen",
        "started_at",
        "stopped_at",
        "passes",
        "tasks_polled",
        "errors",
    )
    readonly_fields = (
        "name",
        "state",
        "last_seen_at",
        "started_at",
        "stopped_at",
        "passes",
        "tasks_polled",
        "errors",
    )
    ordering = ("-last_seen_at",)

    class Media:
        css = {"all": ("admin/videos/changelist.css",)}

    @admin.display(description="state")
    def state(self, worker: WorkerHeartbeat) -> str:
        # The banner's rule (videos.worker_status): silent once not seen for STALE_AFTER.
        if worker.stopped_at is not None:
            state, words = "stopped", "stopped"
        elif is_silent(worker.last_seen_at):
            state, words = "silent", "silent (not seen lately)"
        else:
            state, words = "alive", "alive"
        return format_html('<span class="vt-worker vt-worker-{}">{}</span>', state, words)

    @admin.display(description="last seen", ordering="last_seen_at")
    def last_seen(self, worker: WorkerHeartbeat) -> str:
        return format_html(
            '<span title="{}">{}</span>',
            worker.last_seen_at.isoformat(timespec="seconds"),
            ago(worker.last_seen_at),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ProviderState)
class ProviderStateAdmin(admin.ModelAdmin):
    list_display = (
        "base_url",
        "workspace",
        "connection",
        "paused_until",
        "blocked_reason",
        "blocked_at",
        "updated_at",
    )
    list_filter = ("connection__workspace",)
    list_select_related = ("connection__workspace",)
    readonly_fields = (
        "connection",
        "workspace",
        "base_url",
        "paused_until",
        "blocked_reason",
        "blocked_at",
        "blocked_key_fingerprint",
    )
    actions = ("resume",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="workspace")
    def workspace(self, state: ProviderState) -> str:
        # The deployment's own provider (no connection) serves every workspace.
        if state.connection_id is None:
            return "every workspace (deployment default)"
        return str(state.connection.workspace)

    @admin.action(description="Resume polling (clear pause and block)")
    def resume(self, request: HttpRequest, queryset: QuerySet[ProviderState]) -> None:
        for state in queryset:
            state.resume()
        self.message_user(request, f"{queryset.count()} provider(s) resumed.", messages.SUCCESS)
