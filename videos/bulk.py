"""Acting on many tasks of a board at once: which tasks a selection means, and the actions.

A selection is the rows ticked on a page (their pks) or "all N matching this filter" (the
filter itself). Either way it is read inside the one workspace the board belongs to: a pk
of another workspace's task is never matched, so it is never counted nor acted on. Each
action needs exactly the role its single-task form needs (teams.roles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import QueryDict

from teams.models import AuditEntry, Workspace
from teams.roles import Action
from videos import submissions
from videos.listing import Listing
from videos.models import Status, VideoTask, VideoTaskQuerySet

# Rows a person can tick on one page (the board's page size is smaller).
MAX_PKS = 500


@dataclass(frozen=True)
class BulkAction:
    name: str
    label: str
    action: str
    # How the confirmation asks, with the count: "Stop tracking 37 tasks?"
    verb: str
    needs_confirmation: bool = True


ACTIONS = {
    action.name: action
    for action in [
        BulkAction("stop", "Stop tracking", Action.STOP_TRACKING, "Stop tracking"),
        BulkAction("refresh", "Refresh now", Action.REFRESH, "Refresh"),
        BulkAction("retry", "Retry", Action.START, "Retry"),
        BulkAction("csv", "Download list", Action.VIEW, "Download", needs_confirmation=False),
    ]
    # Retry is the single-task retry of videos.submissions, run per task; offered once it is there.
    if action.name != "retry" or hasattr(submissions, "retry")
}


@dataclass(frozen=True)
class Selection:
    """The tasks a bulk form means; see the module's docstring."""

    listing: Listing
    pks: tuple[int, ...] = ()
    everything: bool = False
    # "All matching" as confirmed: no task newer than the newest one counted then, so the
    # number on the confirmation is the number acted on even while tasks keep arriving.
    upto: int | None = None

    @classmethod
    def from_post(cls, data: QueryDict, workspace: Workspace, user: Any) -> Selection:
        listing = Listing.from_query(data, workspace, user)
        pks = tuple(dict.fromkeys(_ints(data.getlist("pk"))))[:MAX_PKS]
        upto = next(iter(_ints([data.get("upto", "")])), None)
        return cls(listing, pks, data.get("all") == "1", upto)

    def tasks(self, workspace: Workspace) -> VideoTaskQuerySet:
        """The selected tasks, only ever of `workspace`."""
        tasks = VideoTask.objects.in_workspace(workspace)
        if self.everything:
            tasks = self.listing.filter(tasks)
            return tasks.filter(pk__lte=self.upto) if self.upto is not None else tasks
        return tasks.filter(pk__in=self.pks)

    def pinned(self, workspace: Workspace) -> Selection:
        """This selection held to the tasks there are now: ticked rows only those of
        `workspace`, "all matching" no newer than the newest matching now."""
        if not self.everything:
            return Selection(
                self.listing, tuple(self.tasks(workspace).order_by("pk").values_list("pk", flat=True))
            )
        newest = self.tasks(workspace).order_by("-pk").values_list("pk", flat=True).first()
        return Selection(self.listing, self.pks, True, newest or 0)

    def hidden_fields(self) -> list[tuple[str, str]]:
        """The form fields that carry this selection through a confirmation."""
        if self.everything:
            fields = [*self.listing.params().items(), ("all", "1")]
            return fields + ([("upto", str(self.upto))] if self.upto is not None else [])
        return [("pk", str(pk)) for pk in self.pks]


def _ints(texts: list[str]) -> list[int]:
    # isascii: isdigit() also accepts "²", which int() refuses.
    return [int(text) for text in texts if text.isascii() and text.isdigit() and len(text) < 19]


def acted_on(name: str, tasks: VideoTaskQuerySet) -> VideoTaskQuerySet:
    """The part of the selection an action applies to: Retry only to failed tasks."""
    return tasks.filter(status=Status.FAILED) if name == "retry" else tasks


def stop_tracking(tasks: VideoTaskQuerySet, actor: Any, workspace: Workspace) -> int:
    """Stop tracking `tasks` (the video at the provider is not touched), with one audit
    entry per task, as the single action writes: the trail is searched by task ID."""
    with transaction.atomic():
        gone = list(tasks.select_for_update().values_list("task_id", "label"))
        tasks.delete()
        AuditEntry.objects.bulk_create(
            AuditEntry(
                workspace=workspace,
                actor=actor,
                actor_name=actor.get_username(),
                kind=AuditEntry.Kind.STOPPED_TRACKING,
                target=task_id[:300],
                detail=(f"{label} (bulk)" if label else "bulk")[:500],
            )
            for task_id, label in gone
        )
    return len(gone)


def refresh(tasks: VideoTaskQuerySet) -> int:
    """Make the unfinished ones due now; returns how many will be polled."""
    return tasks.poll_soon()


def retry_all(tasks: VideoTaskQuerySet, actor: Any, workspace: Workspace) -> tuple[int, list[str]]:
    """Retry each failed task, once, as the single Retry does: (started, refusals). Each is
    a separate create at the provider; a task that cannot be retried says why."""
    started, refused = 0, []
    for task in acted_on("retry", tasks).select_related("connection"):
        try:
            submission = submissions.retry(actor, task)
        except submissions.NotRetryable as error:
            refused.append(f"{task.task_id}: {error.message}")
            continue
        new_id = submission.task.task_id if submission.task else ""
        AuditEntry.record(
            workspace,
            actor,
            AuditEntry.Kind.STARTED,
            new_id,
            f"retry of {task.task_id}: {submission.get_state_display()} (bulk)",
        )
        if submission.task is not None:
            started += 1
        else:
            refused.append(f"{task.task_id}: {submission.error_message}")
    return started, refused
