"""The one place that decides what the signed-in person may see and do in a workspace.

Views call `membership_for` (a page of a workspace) or `task_for` (a task's page or
action): outside the workspace it is a 404, as if it did not exist; inside it, an action
their role does not allow is a 403 (PermissionDenied). See teams.roles for the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db.models import F, OuterRef, Subquery
from django.http import Http404

from teams.models import Membership, Workspace
from teams.roles import Action, Role, allows

if TYPE_CHECKING:
    from videos.models import VideoTask


def require(role: str, action: str) -> None:
    """Raise PermissionDenied (a 403) unless `role` may do `action`."""
    if not allows(role, action):
        raise PermissionDenied(
            f"As a {Role(role).label.lower()} of this workspace you may not do this: "
            f"{Action(action).label.lower()}."
        )


def current_membership(user: Any) -> Membership:
    """The workspace `/` opens for `user`: the one they used last; before they used any, one
    they were invited to; else their personal one (made now if need be)."""
    membership = (
        Membership.objects.for_user(user)
        .select_related("workspace")
        .order_by(
            F("last_used_at").desc(nulls_last=True),
            F("workspace__personal_of").asc(nulls_first=True),
            "-created_at",
            "pk",
        )
        .first()
    )
    if membership is None:
        workspace = Workspace.objects.personal_for(user)
        membership = Membership.objects.select_related("workspace").get(workspace=workspace, user=user)
    return membership


def membership_for(user: Any, slug: str | None, action: str = Action.VIEW) -> Membership:
    """The person's membership in the workspace `slug` (None: their current one), allowed
    to do `action`. A 404 when they are not in it, a 403 when their role may not."""
    if slug is None:
        membership = current_membership(user)
    else:
        membership = (
            Membership.objects.for_user(user).select_related("workspace").filter(workspace__slug=slug).first()
        )
        if membership is None:
            raise Http404("No such workspace.")
    require(membership.role, action)
    return membership


def task_for(user: Any, pk: int, action: str = Action.VIEW) -> tuple[VideoTask, str]:
    """The task `pk` and the person's role in its workspace, in one query; a 404 unless they
    are in the task's workspace, a 403 when their role may not do `action`."""
    from videos.models import VideoTask

    role = Membership.objects.filter(workspace=OuterRef("workspace_id"), user=user).values("role")[:1]
    task = (
        VideoTask.objects.visible_to(user)
        .select_related("workspace", "connection")
        .annotate(viewer_role=Subquery(role))
        .filter(pk=pk)
        .first()
    )
    if task is None:
        raise Http404("No such task.")
    require(task.viewer_role, action)
    return task, task.viewer_role
