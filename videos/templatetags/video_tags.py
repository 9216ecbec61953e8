"""Compact, human wording for times and sizes on the dashboard."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django import template
from django.utils import timezone

from videos.listing import Listing, Page

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
