"""Helpers for tests that read the dashboard's pages through Django's test client."""

from __future__ import annotations

import re

from videos.models import Status, VideoTask

HX = {"HX-Request": "true"}


def join(workspace, user, role="member"):
    """Put `user` in `workspace` with `role` (or change their role there)."""
    from teams.models import Membership

    membership, _ = Membership.objects.update_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    return membership


def make_task(owner, task_id="video_1", **fields) -> VideoTask:
    return VideoTask.objects.create(owner=owner, task_id=task_id, **fields)


def finished(owner, task_id="video/dl+1=", **fields) -> VideoTask:
    """A completed task. The default ID needs percent-encoding, so every use exercises it."""
    return VideoTask.objects.create(
        owner=owner, task_id=task_id, status=Status.COMPLETED, progress=100, **fields
    )


def live_params(html: str) -> dict[str, str]:
    """The token and ids the page would send with its next refresh."""
    match = re.search(r'id="live"[^>]*hx-vals="([^"]*)"', html)
    assert match, "the page does not poll"
    values = match.group(1).replace("&quot;", '"')
    token = re.search(r'"token": "([^"]*)"', values).group(1)
    ids = re.search(r'"ids": "([^"]*)"', values).group(1)
    return {"token": token, "ids": ids}
