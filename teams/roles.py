"""Who may do what in a workspace: the one table every view, the admin and the README's
role table read. A person's role in the task's (or page's) workspace decides, on every
request (see teams.access)."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


# Each role may do everything the roles below it may.
RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.MANAGER: 2, Role.OWNER: 3}


class Action(models.TextChoices):
    """Everything a person can do in a workspace, named once."""

    VIEW = "view", "See tasks, task pages, downloads and kept copies"
    TRACK = "track", "Track tasks"
    START = "start", "Start and remix videos"
    REFRESH = "refresh", "Refresh a task now"
    STOP_TRACKING = "stop_tracking", "Stop tracking a task"
    DELETE_REMOTE = "delete_remote", "Delete a video at the provider"
    MANAGE_PEOPLE = "manage_people", "Invite and remove people, change roles below owner"
    MANAGE_CONNECTIONS = "manage_connections", "Add, edit, test and remove provider connections"
    MANAGE_API_KEYS = "manage_api_keys", "Create and revoke the workspace's API keys"
    READ_AUDIT = "read_audit", "Read the audit trail"
    RENAME = "rename", "Rename the workspace"
    DELETE_WORKSPACE = "delete_workspace", "Delete the workspace"
    TRANSFER = "transfer", "Make someone an owner, or step down as one"


# The least role that may do each action.
LEAST_ROLE: dict[str, str] = {
    Action.VIEW: Role.VIEWER,
    Action.TRACK: Role.MEMBER,
    Action.START: Role.MEMBER,
    Action.REFRESH: Role.MEMBER,
    Action.STOP_TRACKING: Role.MEMBER,
    Action.DELETE_REMOTE: Role.MANAGER,
    Action.MANAGE_PEOPLE: Role.MANAGER,
    Action.MANAGE_CONNECTIONS: Role.MANAGER,
    Action.MANAGE_API_KEYS: Role.MANAGER,
    Action.READ_AUDIT: Role.MANAGER,
    Action.RENAME: Role.OWNER,
    Action.DELETE_WORKSPACE: Role.OWNER,
    Action.TRANSFER: Role.OWNER,
}


def allows(role: str, action: str) -> bool:
    """Whether `role` may do `action`. An unknown role or action may do nothing."""
    least = LEAST_ROLE.get(action)
    return least is not None and role in RANK and RANK[role] >= RANK[least]


def may_assign(actor_role: str, role: str) -> bool:
    """Managers hand out roles below owner; only an owner makes another owner."""
    if actor_role == Role.OWNER:
        return role in RANK
    return allows(actor_role, Action.MANAGE_PEOPLE) and role in RANK and RANK[role] < RANK[Role.OWNER]
