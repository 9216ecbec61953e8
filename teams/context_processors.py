"""The header's workspace switcher: the person's workspaces, the current one marked, and the
current workspace's settings and connections pages when their role may open them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import F
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject

from teams.models import Workspace
from teams.roles import Action, Role, allows


@dataclass(frozen=True)
class MenuItem:
    name: str
    slug: str
    url: str
    role: str
    current: bool

    @property
    def role_label(self) -> str:
        return Role(self.role).label if self.role in Role.values else self.role


@dataclass(frozen=True)
class WorkspaceMenu:
    items: list[MenuItem] = field(default_factory=list)
    current: MenuItem | None = None
    settings_url: str = ""
    connections_url: str = ""

    @property
    def new_workspace_url(self) -> str:
        try:
            return reverse("teams:workspace_new")
        except NoReverseMatch:
            return ""


def workspaces(request: HttpRequest) -> dict[str, Any]:
    """`workspace_menu` for base.html. Lazy: its one query runs only when a template reads it,
    so fragments (the live refresh above all) pay nothing. Also `density`, the person's
    choice of board rows (videos:density keeps it in their session)."""
    return {"workspace_menu": SimpleLazyObject(lambda: _menu(request)), "density": _density(request)}


# The board's row densities; compact unless the person chose otherwise.
DENSITIES = ("compact", "comfortable")
DENSITY_SESSION_KEY = "density"


def _density(request: HttpRequest) -> str:
    session = getattr(request, "session", None)
    chosen = session.get(DENSITY_SESSION_KEY, "") if session is not None else ""
    return chosen if chosen in DENSITIES else DENSITIES[0]


def _menu(request: HttpRequest) -> WorkspaceMenu:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return WorkspaceMenu()
    current_slug = _current_slug(request)
    items = [
        MenuItem(
            name=workspace.name,
            slug=workspace.slug,
            url=reverse("videos:board", args=[workspace.slug]),
            role=workspace.role,
            current=workspace.slug == current_slug,
        )
        for workspace in Workspace.objects.of(user).annotate(role=F("memberships__role"))
    ]
    current = next((item for item in items if item.current), None)
    if current is None:
        return WorkspaceMenu(items=items)
    return WorkspaceMenu(
        items=items,
        current=current,
        # Every role may open both pages (what it may change there is the page's business);
        # the action named is the one their views require.
        settings_url=_url_if(current, Action.VIEW, "teams:settings"),
        connections_url=_url_if(current, Action.VIEW, "teams:connections"),
    )


def _current_slug(request: HttpRequest) -> str:
    """The workspace the page is about: the one a view named (request.workspace, set where
    the URL has no slug: "/" and task pages), else the slug in the URL."""
    workspace = getattr(request, "workspace", None)
    if workspace is not None:
        return workspace.slug
    match = getattr(request, "resolver_match", None)
    return (match.kwargs.get("slug", "") if match else "") or ""


def _url_if(item: MenuItem, action: str, route: str) -> str:
    if not allows(item.role, action):
        return ""
    try:
        return reverse(route, kwargs={"slug": item.slug})
    except NoReverseMatch:
        # The page is not routed (yet): no link rather than a broken one.
        return ""
