"""A board's tasks as CSV: the current filter's export and the bulk "Download list".

Streamed row by row over a server-side iterator, so ten thousand tasks never sit in
memory at once, and every cell is made safe to open in a spreadsheet.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal

from django.http import StreamingHttpResponse
from django.urls import reverse

from videos.models import VideoTask, VideoTaskQuerySet

# Rows read from the database per round trip.
CHUNK_SIZE = 500
HEADER = [
    "task ID",
    "label",
    "status",
    "progress",
    "model",
    "seconds",
    "size",
    "error code",
    "error message",
    "created",
    "completed",
    "expires",
    "added by",
    "connection",
    "dashboard link",
    "download link",
]
# A spreadsheet reads a cell starting with one of these as a formula (tab and CR too:
# some strip them and then see the "=" behind).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """`value` as CSV text that a spreadsheet shows as text, never runs as a formula: a
    cell starting with =, +, -, @, tab or CR gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, Decimal):
        text = format(value.normalize(), "f")
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file whose write() hands the line back, for csv.writer to feed a generator."""

    def write(self, value: str) -> str:
        return value


def rows(tasks: Iterable[VideoTask], absolute: Callable[[str], str]) -> Iterator[list[str]]:
    """One list of cells per task; `absolute` makes a path into a full URL."""
    for task in tasks:
        dashboard = absolute(reverse("videos:task_detail", args=[task.pk]))
        download = absolute(reverse("videos:download", args=[task.pk])) if task.can_download else ""
        # The owner and the connection come with the row (select_related): no query per task.
        added_by = task.owner.get_username() if task.owner_id else ""
        cells = [
            task.task_id,
            task.label,
            task.status,
            task.progress,
            task.model,
            task.seconds,
            task.size,
            task.error_code,
            task.error_message,
            task.created_at,
            task.completed_at,
            task.expires_at,
            added_by,
            task.connection.name if task.connection_id else "",
            dashboard,
            download,
        ]
        yield [safe_cell(cell) for cell in cells]


def csv_response(
    tasks: VideoTaskQuerySet, absolute: Callable[[str], str], filename: str
) -> StreamingHttpResponse:
    """`tasks` (already scoped to one workspace and ordered) as a streamed CSV attachment."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        # A byte-order mark, so a spreadsheet reads the file as UTF-8.
        yield "\ufeff" + writer.writerow(HEADER)
        iterator = tasks.select_related("owner", "connection").iterator(chunk_size=CHUNK_SIZE)
        for cells in rows(iterator, absolute):
            yield writer.writerow(cells)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
