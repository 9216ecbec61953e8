"""The address a request came from, as the PaaS router saw it.

Each proxy in front of the app appends the address it was connected from to
X-Forwarded-For, so only the right-hand entries were written by someone we trust; the
left-most one is whatever the client chose to send. With TRUSTED_PROXY_COUNT proxies,
the client is the TRUSTED_PROXY_COUNT-th entry from the right.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, or REMOTE_ADDR when the header cannot be trusted."""
    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.TRUSTED_PROXY_COUNT
    if not count:
        return remote
    forwarded = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < count:
        # Fewer hops than proxies: the request did not come through them all, so nothing
        # in the header is known to be true. The connecting address is at least not chosen.
        return remote
    return _valid_ip(forwarded[-count]) or remote


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None
