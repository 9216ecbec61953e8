"""A board's view of a workspace's tasks: filters and sort order from the URL, and keyset
pagination.

Keyset ("after this row in the board's order") instead of OFFSET pages and a full COUNT:
the cost of a page stays the same with ten thousand tasks, and a page does not shift while
tasks arrive. A cursor carries the sort column's value of the row it stands on and that
row's pk, the tie-breaker, so a page boundary inside a run of equal values (fifty tasks at
0 %, a hundred without an expiry) loses and repeats nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Case, F, IntegerField, Q, Value, When
from django.db.models.expressions import OrderBy
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from teams.models import Workspace
from videos.forms import without_controls
from videos.models import Status, VideoTask, VideoTaskQuerySet

PAGE_SIZE = 50
MAX_QUERY_LENGTH = 100
# The "added by" filter's value for the signed-in person's own tasks.
MINE = "mine"
# The time-range chips; a custom range is `from` and/or `to` (dates, both days included).
RANGES = {"today": "Today", "7d": "7 days"}
# Status sorts in the order a task lives through, not alphabetically.
STATUS_ORDER = [Status.PENDING, Status.PROCESSING, Status.COMPLETED, Status.FAILED]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SortKey:
    """A column the board sorts by: the field (or annotation) compared, what kind of value
    a cursor holds for it, and whether it may be null (nulls always come last)."""

    name: str
    label: str
    field: str
    kind: str  # "datetime", "int" or "text"
    nullable: bool = False


SORT_KEYS = {
    key.name: key
    for key in [
        SortKey("status", "Status", "status_rank", "int"),
        SortKey("progress", "Progress", "progress", "int"),
        SortKey("model", "Model", "model", "text"),
        SortKey("created", "Age", "created_at", "datetime"),
        SortKey("expires", "Expiry", "expires_at", "datetime", nullable=True),
    ]
}
# Newest first, as the board always was.
DEFAULT_SORT = "-created"


def sortable(tasks: VideoTaskQuerySet, sort: str) -> VideoTaskQuerySet:
    """`tasks` with what the sort `sort` compares (the status sort compares a rank)."""
    if sort.lstrip("-") == "status":
        return tasks.annotate(
            status_rank=Case(
                *[When(status=value, then=Value(rank)) for rank, value in enumerate(STATUS_ORDER)],
                default=Value(len(STATUS_ORDER)),
                output_field=IntegerField(),
            )
        )
    return tasks


@dataclass(frozen=True)
class Cursor:
    """A row's place in a sort order: its sort value (None for a null) and its pk."""

    value: datetime | int | str | None
    pk: int

    def __str__(self) -> str:
        # The pk last, after the last "_": a model name may itself hold underscores.
        if self.value is None:
            text = ""
        elif isinstance(self.value, datetime):
            text = str((self.value - EPOCH) // timedelta(microseconds=1))
        else:
            text = str(self.value)
        return f"{text}_{self.pk}"

    @property
    def created_at(self) -> datetime | None:
        return self.value if isinstance(self.value, datetime) else None

    @classmethod
    def parse(cls, text: str, kind: str = "datetime", nullable: bool = False) -> Cursor | None:
        """A cursor from the URL for a sort of `kind`, or None for anything malformed (the
        first page then)."""
        if len(text) > 300:
            return None
        raw, _, pk = text.rpartition("_")
        # ASCII digits only: isdigit() also says yes to "²", which int() refuses.
        if not (pk.isascii() and pk.isdigit() and len(pk) <= 19):
            return None
        if kind == "text":
            return cls(without_controls(raw), int(pk))
        if raw == "" and nullable:
            return cls(None, int(pk))
        digits = raw.removeprefix("-") if kind == "int" else raw
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 20):
            return None
        if kind == "int":
            return cls(int(raw), int(pk))
        try:
            # Whole microseconds, no float on the way: the cursor must equal the row's value.
            when = EPOCH + timedelta(microseconds=int(raw))
        except OverflowError:
            return None
        return cls(when, int(pk))

    @classmethod
    def of(cls, task: VideoTask, key: SortKey | None = None) -> Cursor:
        key = key or SORT_KEYS["created"]
        return cls(getattr(task, key.field), task.pk)


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
    view for a teammate), the filters, the sort order and the page."""

    slug: str
    status: str = ""
    q: str = ""
    # "Added by": "" for everyone, MINE, or a member's username; owner_id is who it means.
    by: str = ""
    owner_id: int | None = None
    model: str = ""
    # The connection filter: its pk as text ("" for all), as the URL says it.
    connection: str = ""
    # Time range: "", "today" or "7d"; or a custom `since`/`until` (dates, both included).
    range: str = ""
    since: date | None = None
    until: date | None = None
    sort: str = DEFAULT_SORT
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
        model = without_controls(params.get("model", "")).strip()[:100]
        if model and not VideoTask.objects.in_workspace(workspace).filter(model=model).exists():
            problems.append("Unknown model filter ignored.")
            model = ""
        connection = params.get("connection", "").strip()
        if connection and not (
            connection.isascii()
            and connection.isdigit()
            and len(connection) < 19
            and workspace.connections.filter(pk=int(connection)).exists()
        ):
            problems.append("Unknown connection filter ignored.")
            connection = ""
        time_range, since, until = cls._time_range(params, problems)
        sort = params.get("sort", "") or DEFAULT_SORT
        if sort.lstrip("-") not in SORT_KEYS or sort.count("-") > 1:
            problems.append("Unknown sort order ignored.")
            sort = DEFAULT_SORT
        key = SORT_KEYS[sort.lstrip("-")]
        before = Cursor.parse(params.get("before", ""), key.kind, key.nullable)
        after = None if before else Cursor.parse(params.get("after", ""), key.kind, key.nullable)
        return cls(
            slug=workspace.slug,
            status=status,
            q=q,
            by=by,
            owner_id=owner_id,
            model=model,
            connection=connection,
            range=time_range,
            since=since,
            until=until,
            sort=sort,
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

    @staticmethod
    def _time_range(params: QueryDict, problems: list[str]) -> tuple[str, date | None, date | None]:
        """(range, since, until): a chip, or a custom range of dates; a custom range wins."""
        dates: list[date | None] = []
        for name in ("from", "to"):
            text = params.get(name, "").strip()
            try:
                dates.append(date.fromisoformat(text) if text else None)
            except ValueError:
                problems.append(f"Unreadable “{name}” date ignored (use YYYY-MM-DD).")
                dates.append(None)
        since, until = dates
        if since and until and since > until:
            problems.append("The “from” date is after the “to” date; the range was ignored.")
            since = until = None
        time_range = params.get("range", "")
        if since or until:
            time_range = "custom"
        elif time_range not in RANGES:
            if time_range:
                problems.append("Unknown time range ignored.")
            time_range = ""
        return time_range, since, until

    @property
    def sort_key(self) -> SortKey:
        return SORT_KEYS[self.sort.lstrip("-")]

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    def filter(self, tasks: VideoTaskQuerySet) -> VideoTaskQuerySet:
        if self.owner_id is not None:
            # Shaped for the videotask_board_owner index (workspace, owner, newest first).
            tasks = tasks.filter(owner_id=self.owner_id)
        if self.status:
            tasks = tasks.filter(status=self.status)
        if self.q:
            tasks = tasks.matching(self.q)
        if self.model:
            tasks = tasks.filter(model=self.model)
        if self.connection:
            tasks = tasks.filter(connection_id=int(self.connection))
        start, end = self.time_bounds()
        if start:
            tasks = tasks.filter(created_at__gte=start)
        if end:
            tasks = tasks.filter(created_at__lt=end)
        return tasks

    def time_bounds(self, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
        """The range's [start, end) in the server's time zone: "today" is since local midnight."""
        now = now or timezone.now()
        zone = timezone.get_current_timezone()
        if self.range == "today":
            return datetime.combine(timezone.localdate(now), time.min, tzinfo=zone), None
        if self.range == "7d":
            return now - timedelta(days=7), None
        start = datetime.combine(self.since, time.min, tzinfo=zone) if self.since else None
        end = datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=zone) if self.until else None
        return start, end

    def ordered(self, tasks: VideoTaskQuerySet, *, reverse: bool = False) -> VideoTaskQuerySet:
        """The filtered tasks in the board's order (or its exact reverse), nulls last."""
        key = self.sort_key
        ascending = self.descending == reverse
        column: OrderBy = F(key.field).asc() if ascending else F(key.field).desc()
        if key.nullable:
            nulls = {"nulls_first": True} if reverse else {"nulls_last": True}
            column = F(key.field).asc(**nulls) if ascending else F(key.field).desc(**nulls)
        return sortable(self.filter(tasks), self.sort).order_by(column, "pk" if ascending else "-pk")

    def _beyond(self, edge: Cursor, *, reverse: bool) -> Q:
        """The rows after `edge` in the board's order (before it, when `reverse`)."""
        key = self.sort_key
        # Going the board's way on an ascending sort, or back on a descending one: greater.
        op = "lt" if self.descending != reverse else "gt"
        pk_after = Q(**{f"pk__{op}": edge.pk})
        nulls = Q(**{f"{key.field}__isnull": True})
        if edge.value is None:
            # Nulls come last: past a null, only later nulls; before one, every value too.
            return (nulls & pk_after) | ~nulls if reverse else nulls & pk_after
        beyond = Q(**{f"{key.field}__{op}": edge.value}) | Q(**{key.field: edge.value}) & pk_after
        return beyond | nulls if key.nullable and not reverse else beyond

    def page(self, tasks: VideoTaskQuerySet, size: int | None = None) -> Page:
        """One page of the filtered tasks in the board's order, with cursors to its neighbours."""
        size = size or PAGE_SIZE
        key = self.sort_key
        if self.after:
            newer = self.ordered(tasks, reverse=True).filter(self._beyond(self.after, reverse=True))
            rows = list(newer[: size + 1])
            more_newer = len(rows) > size
            rows = rows[:size][::-1]
            return Page(
                rows,
                older=Cursor.of(rows[-1], key) if rows else None,
                newer=Cursor.of(rows[0], key) if rows and more_newer else None,
            )
        ordered = self.ordered(tasks)
        if self.before:
            ordered = ordered.filter(self._beyond(self.before, reverse=False))
        rows = list(ordered[: size + 1])
        more_older = len(rows) > size
        rows = rows[:size]
        return Page(
            rows,
            older=Cursor.of(rows[-1], key) if rows and more_older else None,
            newer=Cursor.of(rows[0], key) if rows and self.before else None,
        )

    def params(self) -> dict[str, str]:
        """The filters and sort as URL parameters (no page cursor): what "all matching" and
        the export carry."""
        values = {
            "status": self.status,
            "q": self.q,
            "by": self.by,
            "model": self.model,
            "connection": self.connection,
            "range": self.range if self.range != "custom" else "",
            "from": self.since.isoformat() if self.since else "",
            "to": self.until.isoformat() if self.until else "",
            "sort": self.sort if self.sort != DEFAULT_SORT else "",
        }
        return {key: value for key, value in values.items() if value}

    def querystring(self, **changes: str | Cursor | None) -> str:
        """This listing's URL parameters, with `changes` applied (None removes one)."""
        values: dict[str, object] = {**self.params(), "before": self.before, "after": self.after}
        for name, value in changes.items():
            values[name.rstrip("_")] = value  # from_=…: "from" is a keyword
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

    def sort_links(self) -> dict[str, dict[str, str]]:
        """Per column: the link that sorts by it (the other way round when it is the current
        sort; a new column starts with the order people expect of it) and its aria-sort."""
        links = {}
        for name in SORT_KEYS:
            current = self.sort.lstrip("-") == name
            if current:
                target = name if self.descending else f"-{name}"
            else:
                target = name if name in ("status", "model", "expires") else f"-{name}"
            links[name] = {
                "href": self.href(sort=target if target != DEFAULT_SORT else None, before=None, after=None),
                "aria": ("descending" if self.descending else "ascending") if current else "",
            }
        return links

    def range_links(self) -> list[dict[str, Any]]:
        """The time-range chips: any time, today, 7 days; the active one is marked."""
        chips = [("", "Any time"), *RANGES.items()]
        return [
            {
                "label": label,
                "href": self.href(range=value or None, from_=None, to=None, before=None, after=None),
                "active": self.range == value,
            }
            for value, label in chips
        ]

    @property
    def is_filtered(self) -> bool:
        return bool(self.status or self.q or self.by or self.model or self.connection or self.range)

    @property
    def board_url(self) -> str:
        return reverse("videos:board", args=[self.slug])
