"""Compact, human wording for times and sizes on the dashboard."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django import template
from django.utils import timezone

from videos.listing import Listing, Page
from videos.models import VideoTask
from videos.worker_status import check_overdue_at

register = template.Library()


def _span(seconds: float) -> str:
    seconds = int(abs(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes and hours < 10 else f"{hours} h"
    return f"{hours // 24} days"


@register.filter
def ago(value: datetime | None) -> str:
    """'3 min ago' (static text; static/js/app.js keeps it current in the browser)."""
    if not value:
        return ""
    seconds = (timezone.now() - value).total_seconds()
    if seconds < 5:
        return "just now"
    return f"{_span(seconds)} ago" if seconds > 0 else f"in {_span(seconds)}"


@register.filter
def time_left(value: datetime | None) -> str:
    """'in 42 min' before a deadline, 'expired' after it."""
    if not value:
        return ""
    seconds = (value - timezone.now()).total_seconds()
    return f"in {_span(seconds)}" if seconds > 0 else "expired"


@register.filter
def eta_left(value: datetime | None) -> str:
    """'in 2 min' before an estimated finish, 'any moment now' once it has passed."""
    if not value:
        return ""
    seconds = (value - timezone.now()).total_seconds()
    return f"in {_span(seconds)}" if seconds > 0 else "any moment now"


@register.filter
def span(value: timedelta | float | None) -> str:
    if value is None:
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return _span(seconds)


@register.filter
def clip_seconds(value: Decimal | None) -> str:
    """Seconds of video: '8 s', '10.5 s'."""
    if value is None:
        return ""
    return f"{value.normalize():f} s"


@register.filter
def pretty_json(value: Any) -> str:
    """Indented JSON for a <pre>; autoescaping still applies to the result."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def pager_links(listing: Listing, page: Page) -> dict[str, str]:
    return listing.pager_links(page)


@register.filter
def overdue_at(task: VideoTask) -> datetime | None:
    """When the task's next check counts as overdue (static/js/app.js reads it as
    data-overdue-at to flag the row without a round trip: a dead worker sends no news)."""
    if task.is_terminal:
        return None
    return check_overdue_at(task.next_poll_at)


@register.filter
def check_overdue(task: VideoTask) -> bool:
    """Whether the worker has missed the task's next check (it should have run by now)."""
    when = overdue_at(task)
    return when is not None and when < timezone.now()


@register.filter
def next_check(task: VideoTask) -> str:
    """'in 42 s', 'due now' (its time has come; the worker picks it up within seconds) or
    'overdue' (the worker missed it). A task the worker is checking has the end of its
    lease as next_poll_at, which is not a next check: 'under way'."""
    if task.is_terminal or not task.next_poll_at:
        return ""
    if check_overdue(task):
        return "overdue"
    if task.lease_token:
        return "under way"
    seconds = (task.next_poll_at - timezone.now()).total_seconds()
    return f"in {_span(seconds)}" if seconds > 0 else "due now"


@register.filter
def eta_text(task: VideoTask) -> str:
    """The ETA, frozen as "unknown" while the task's next check is overdue: an estimate
    that keeps counting down while nobody asks the provider is made up."""
    if check_overdue(task):
        return "unknown (next check overdue)"
    return eta_left(task.eta_at)
