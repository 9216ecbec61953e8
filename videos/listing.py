"""A board's view of a workspace's tasks: filters from the URL and keyset pagination.

Keyset ("older than this row") instead of OFFSET pages and a full COUNT: the cost of a
page stays the same with ten thousand tasks, and a page does not shift while tasks arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q
from django.http import QueryDict
from django.urls import reverse

from teams.models import Workspace
from videos.forms import without_controls
from videos.models import Status, VideoTask, VideoTaskQuerySet

PAGE_SIZE = 50
MAX_QUERY_LENGTH = 100
# The "added by" filter's value for the signed-in person's own tasks.
MINE = "mine"


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    pk: int

    def __str__(self) -> str:
        micros = int(self.created_at.timestamp() * 1_000_000)
        return f"{micros}_{self.pk}"

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        """A cursor from the URL, or None for anything malformed (the first page then)."""
        micros, _, pk = text.partition("_")
        # ASCII digits only: isdigit() also says yes to "²", which int() refuses.
        if not (micros.isascii() and pk.isascii() and micros.isdigit() and pk.isdigit()):
            return None
        if len(micros) > 20 or len(pk) > 19:
            return None
        try:
            when = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
        return cls(when, int(pk))

    @classmethod
    def of(cls, task: VideoTask) -> Cursor:
        return cls(task.created_at, task.pk)


@dataclass
class Page:
    tasks: list[VideoTask]
    older: Cursor | None = None
    newer: Cursor | None = None

    @property
    def ids(self) -> str:
        return ",".join(str(task.pk) for task in self.tasks)

    @property
    def any_active(self) -> bool:
        return any(not task.is_terminal for task in self.tasks)


@dataclass(frozen=True)
class Listing:
    """What a board shows: the workspace (its URLs carry the slug, so a link opens the same
    view for a teammate), the filters and the page."""

    slug: str
    status: str = ""
    q: str = ""
    # "Added by": "" for everyone, MINE, or a member's username; owner_id is who it means.
    by: str = ""
    owner_id: int | None = None
    before: Cursor | None = None
    after: Cursor | None = None
    problems: list[str] = field(default_factory=list, compare=False)

    @classmethod
    def from_query(cls, params: QueryDict, workspace: Workspace, user: Any) -> Listing:
        """The listing a URL asks for on `workspace`'s board, as `user` sees it. Anything
        unusable is dropped (and said in `problems`), and control characters never get past
        here: the search reaches the database, and PostgreSQL refuses a NUL in a query."""
        problems = []
        status = params.get("status", "")
        if status and status not in Status.values:
            problems.append("Unknown status filter ignored.")
            status = ""
        q = without_controls(params.get("q", "")).strip()
        if len(q) > MAX_QUERY_LENGTH:
            problems.append(f"Search shortened to {MAX_QUERY_LENGTH} characters.")
            q = q[:MAX_QUERY_LENGTH]
        by, owner_id = cls._added_by(without_controls(params.get("by", "")).strip()[:150], workspace, user)
        if by is None:
            problems.append("Unknown member filter ignored.")
            by = ""
        before = Cursor.parse(params.get("before", ""))
        after = None if before else Cursor.parse(params.get("after", ""))
        return cls(
            slug=workspace.slug,
            status=status,
            q=q,
            by=by,
            owner_id=owner_id,
            before=before,
            after=after,
            problems=problems,
        )

    @staticmethod
    def _added_by(by: str, workspace: Workspace, user: Any) -> tuple[str | None, int | None]:
        """(by, owner id) for the "added by" filter; by None when `by` names no member of
        this workspace (someone outside it is not even confirmed to exist)."""
        if not by:
            return "", None
        if by == MINE:
            return MINE, user.pk
        owner_id = workspace.memberships.filter(user__username=by).values_list("user_id", flat=True).first()
        return (by, owner_id) if owner_id is not None else (None, None)

    def filter(self, tasks: VideoTaskQuerySet) -> VideoTaskQuerySet:
        if self.owner_id is not None:
            # Shaped for the videotask_board_owner index (workspace, owner, newest first).
            tasks = tasks.filter(owner_id=self.owner_id)
        if self.status:
            tasks = tasks.filter(status=self.status)
        if self.q:
            tasks = tasks.matching(self.q)
        return tasks

    def page(self, tasks: VideoTaskQuerySet) -> Page:
        """One page of the filtered tasks, newest first, with cursors to its neighbours."""
        tasks = self.filter(tasks)
        if self.after:
            edge = self.after
            rows = list(
                tasks.filter(
                    Q(created_at__gt=edge.created_at) | Q(created_at=edge.created_at, pk__gt=edge.pk)
                ).order_by("created_at", "pk")[: PAGE_SIZE + 1]
            )
            more_newer = len(rows) > PAGE_SIZE
            rows = rows[:PAGE_SIZE][::-1]
            return Page(
                rows,
                older=Cursor.of(rows[-1]) if rows else None,
                newer=Cursor.of(rows[0]) if rows and more_newer else None,
            )
        if self.before:
            edge = self.before
            tasks = tasks.filter(
                Q(created_at__lt=edge.created_at) | Q(created_at=edge.created_at, pk__lt=edge.pk)
            )
        rows = list(tasks.order_by("-created_at", "-pk")[: PAGE_SIZE + 1])
        more_older = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        return Page(
            rows,
            older=Cursor.of(rows[-1]) if rows and more_older else None,
            newer=Cursor.of(rows[0]) if rows and self.before else None,
        )

    def querystring(self, **changes: str | Cursor | None) -> str:
        """This listing's URL parameters, with `changes` applied (None removes one)."""
        values: dict[str, object] = {
            "status": self.status,
            "q": self.q,
            "by": self.by,
            "before": self.before,
            "after": self.after,
        }
        values.update(changes)
        return urlencode({key: str(value) for key, value in values.items() if value})

    def href(self, **changes: str | Cursor | None) -> str:
        query = self.querystring(**changes)
        url = reverse("videos:board", args=[self.slug])
        return f"{url}?{query}" if query else url

    def pager_links(self, page: Page) -> dict[str, str]:
        """Links to the first, newer and older pages ("" where there is none)."""
        return {
            "newest": self.href(before=None, after=None) if (self.before or self.after) else "",
            "newer": self.href(after=page.newer, before=None) if page.newer else "",
            "older": self.href(before=page.older, after=None) if page.older else "",
        }

    @property
    def is_filtered(self) -> bool:
        return bool(self.status or self.q or self.by)

    @property
    def board_url(self) -> str:
        return reverse("videos:board", args=[self.slug])
