"""The README's role table, cell by cell, over every page and action of a workspace: each
route by owner, manager, member, viewer and an outsider. Allowed: neither 403 nor 404. Not
allowed: 403 for a person in the workspace, 404 for anyone outside it.

ROUTES names the action of every route that belongs to a workspace (by its slug, or by a
task, connection, invitation or person in it); a new route fails
`test_every_workspace_route_is_in_the_table` until it is given one. What an allowed action
does, and that a refused one changes nothing, is pinned beside each feature
(tests/test_task_roles.py, tests/test_workspaces.py, tests/test_connections.py).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from api.models import ApiKey
from teams.models import Invitation, Membership, ProviderConnection
from teams.roles import Action, Role, allows
from tests.pages import finished, join

# route name: (method, the action it needs, what its pk names)
ROUTES: dict[str, tuple[str, str, str]] = {
    "videos:board": ("GET", Action.VIEW, ""),
    "videos:board_live": ("GET", Action.VIEW, ""),
    "videos:board_status": ("GET", Action.VIEW, ""),
    "videos:board_track": ("POST", Action.TRACK, ""),
    "videos:undo_track": ("POST", Action.STOP_TRACKING, ""),
    "videos:board_new_video": ("POST", Action.START, ""),
    "videos:board_export": ("GET", Action.VIEW, ""),
    # With no action named it only goes back to the board; each action's role: tests/test_bulk.py.
    "videos:board_bulk": ("POST", Action.VIEW, ""),
    "videos:task_detail": ("GET", Action.VIEW, "task"),
    "videos:download": ("GET", Action.VIEW, "task"),
    "videos:refresh_task": ("POST", Action.REFRESH, "task"),
    "videos:stop_tracking": ("GET", Action.STOP_TRACKING, "task"),
    "videos:remix_task": ("POST", Action.START, "task"),
    "videos:retry_task": ("POST", Action.START, "task"),
    "videos:duplicate_task": ("GET", Action.START, "task"),
    "videos:delete_remote": ("GET", Action.DELETE_REMOTE, "task"),
    "teams:settings": ("GET", Action.VIEW, ""),
    "teams:leave": ("POST", Action.VIEW, ""),
    "teams:audit": ("GET", Action.READ_AUDIT, ""),
    "teams:invite": ("POST", Action.MANAGE_PEOPLE, ""),
    "teams:withdraw_invitation": ("POST", Action.MANAGE_PEOPLE, "invitation"),
    "teams:change_role": ("POST", Action.MANAGE_PEOPLE, "membership"),
    "teams:remove_member": ("POST", Action.MANAGE_PEOPLE, "membership"),
    "teams:step_down": ("POST", Action.TRANSFER, ""),
    "teams:rename": ("POST", Action.RENAME, ""),
    "teams:delete_workspace": ("GET", Action.DELETE_WORKSPACE, ""),
    "teams:connections": ("GET", Action.VIEW, ""),
    "teams:connection_add": ("GET", Action.MANAGE_CONNECTIONS, ""),
    "teams:connection_edit": ("GET", Action.MANAGE_CONNECTIONS, "connection"),
    "teams:connection_test": ("POST", Action.MANAGE_CONNECTIONS, "connection"),
    "teams:connection_remove": ("GET", Action.MANAGE_CONNECTIONS, "connection"),
    "api_keys:list": ("GET", Action.MANAGE_API_KEYS, ""),
    "api_keys:revoke": ("POST", Action.MANAGE_API_KEYS, "api_key"),
    "teams:connection_hook": ("POST", Action.MANAGE_CONNECTIONS, "connection"),
    "notifications:channels": ("GET", Action.MANAGE_CONNECTIONS, ""),
    "notifications:channel": ("GET", Action.MANAGE_CONNECTIONS, "channel"),
    "notifications:channel_test": ("POST", Action.MANAGE_CONNECTIONS, "channel"),
    "notifications:channel_enable": ("POST", Action.MANAGE_CONNECTIONS, "channel"),
    "notifications:channel_remove": ("POST", Action.MANAGE_CONNECTIONS, "channel"),
}
# Routes with no workspace in their address: the person's current workspace (the same
# views as the board's, checked there), or no workspace yet.
NOT_IN_THE_TABLE = {
    "videos:dashboard",
    "videos:dashboard_live",
    "videos:track_tasks",
    "videos:new_video",
    "videos:worker_status",
    "videos:density",
    "teams:workspace_new",
    "teams:invitation",
    "teams:accept_invitation",
}
PERSONAS = ["owner", "manager", "member", "viewer", "outsider"]


def _routes(patterns, namespace: str = "") -> list[str]:
    names = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            names += _routes(pattern.url_patterns, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern) and namespace in (
            "videos",
            "teams",
            "api_keys",
            "notifications",
        ):
            names.append(f"{namespace}:{pattern.name}")
    return names


def test_every_workspace_route_is_in_the_table():
    routes = set(_routes(get_resolver().url_patterns))
    assert routes - NOT_IN_THE_TABLE == set(ROUTES)


@pytest.fixture
def world(owner, teammate, team, provider):
    """The team workspace with a finished task, a connection, a pending invitation and a
    viewer to act on."""
    target = get_user_model().objects.create_user("target", password="target-password-1")
    connection = ProviderConnection(workspace=team, name="Gateway", base_url=provider.base_url)
    connection.set_api_key("sk-role-table-0123456789")
    connection.save()
    invitation, _token = Invitation.issue(team, "new@example.com", Role.MEMBER, owner)
    return {
        "task": finished(owner, workspace=team),
        "connection": connection,
        "invitation": invitation,
        "membership": join(team, target, Role.VIEWER),
        "api_key": ApiKey.issue(team, "Script", read_only=True, created_by=owner)[0],
        "channel": _channel(team, owner),
    }


def _channel(team, owner):
    from notifications.models import NotificationChannel

    made = NotificationChannel(workspace=team, kind="slack", target="https://hooks.slack.example/T/B/x")
    made.created_by = owner
    made.save()
    return made


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_role_table(route, persona, client, world, owner, teammate, outsider, team):
    method, action, names = ROUTES[route]
    if persona == "owner":
        user = owner
    elif persona == "outsider":
        user = outsider
    else:
        join(team, teammate, persona)
        user = teammate
    client.force_login(user)
    args = [world[names].pk] if names == "task" else ["team"] + ([world[names].pk] if names else [])
    url = reverse(route, args=args)
    role = Membership.objects.filter(workspace=team, user=user).values_list("role", flat=True).first()
    response = client.get(url) if method == "GET" else client.post(url, {})
    if persona == "outsider":
        assert response.status_code == 404
    elif allows(role, action):
        assert response.status_code not in (403, 404)
    else:
        assert response.status_code == 403
