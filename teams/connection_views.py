"""A workspace's provider connections: the list every member sees, and the pages managers
add, edit, test and remove them with. Who may do what is decided by teams.access (a 404
outside the workspace, a 403 for a role that may not), and a connection is only ever looked
up inside the URL's workspace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.db.models import RestrictedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from teams.access import membership_for
from teams.connection_forms import ConnectionForm
from teams.connection_test import Outcome, run_test
from teams.models import AuditEntry, Membership, ProviderConnection, Workspace, generate_hook_secret
from teams.roles import Action
from videos.models import ProviderState, Submission

Kind = AuditEntry.Kind

# Two managers saving at once: the database's constraints (one name, one default per
# workspace) turned the second save down.
_RACED = "Someone changed this workspace's connections at the same time; check and save again."


@dataclass(frozen=True)
class ConnectionRow:
    """A connection as its row shows it: the worker's pause or block (from its
    ProviderState, when it has one) and the outcome of a test just run."""

    connection: ProviderConnection
    paused_until: Any = None
    blocked_reason: str = ""
    outcome: Outcome | None = None

    @classmethod
    def of(cls, connection: ProviderConnection, outcome: Outcome | None = None) -> ConnectionRow:
        state = getattr(connection, "state", None)  # no row until the worker first needs one
        if state is None:
            return cls(connection, outcome=outcome)
        paused = state.paused_until if state.is_paused(timezone.now()) else None
        # A block holds only for the key it was for: a replaced key lifts it.
        blocked = state.blocked_reason if state.is_blocked_for(connection.key_fingerprint()) else ""
        return cls(connection, paused, blocked, outcome)


def _connections(workspace: Workspace) -> Any:
    return workspace.connections.select_related("state").order_by("name", "pk")


def _connection(membership: Membership, pk: int) -> ProviderConnection:
    return get_object_or_404(_connections(membership.workspace), pk=pk)


def _list_url(workspace: Workspace) -> str:
    return reverse("teams:connections", args=[workspace.slug])


@require_GET
@login_required
def connection_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_for(request.user, slug)
    workspace = membership.workspace
    return render(
        request,
        "teams/connections.html",
        {
            "workspace": workspace,
            "membership": membership,
            "manages": membership.may(Action.MANAGE_CONNECTIONS),
            "rows": [ConnectionRow.of(connection) for connection in _connections(workspace)],
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def connection_add(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_for(request.user, slug, Action.MANAGE_CONNECTIONS)
    workspace = membership.workspace
    form = ConnectionForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        form.instance.created_by = request.user
        try:
            with transaction.atomic():
                connection = form.save()
                AuditEntry.record(
                    workspace, request.user, Kind.CONNECTION_ADDED, connection.name, connection.base_url
                )
        except IntegrityError:
            form.add_error(None, _RACED)
        else:
            messages.success(request, f"Connection {connection.name} added. Test it to see that it works.")
            return redirect(_list_url(workspace))
    return render(request, "teams/connection_form.html", {"workspace": workspace, "form": form})


@require_http_methods(["GET", "POST"])
@login_required
def connection_edit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    membership = membership_for(request.user, slug, Action.MANAGE_CONNECTIONS)
    workspace = membership.workspace
    connection = _connection(membership, pk)
    # Read before the form's validation writes the posted values onto the instance.
    saved_name = connection.name
    form = ConnectionForm(request.POST or None, instance=connection, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        lifts_block = form.key_or_url_changed()
        try:
            with transaction.atomic():
                connection = form.save()
                if lifts_block:
                    # A new key or address deserves a fresh start: the worker's block (and
                    # pause) were about the old one.
                    for state in ProviderState.objects.filter(connection=connection):
                        state.resume()
                if changes:
                    AuditEntry.record(
                        workspace, request.user, Kind.CONNECTION_CHANGED, connection.name, ", ".join(changes)
                    )
        except IntegrityError:
            form.add_error(None, _RACED)
        else:
            messages.success(
                request, f"Connection {connection.name} saved." if changes else "Nothing changed."
            )
            return redirect(_list_url(workspace))
    return _edit_page(request, workspace, form, connection, saved_name)


def _edit_page(
    request: HttpRequest,
    workspace: Workspace,
    form: ConnectionForm,
    connection: ProviderConnection,
    saved_name: str,
    new_hook_secret: str = "",
) -> HttpResponse:
    return render(
        request,
        "teams/connection_form.html",
        {
            "workspace": workspace,
            "form": form,
            "connection": connection,
            "saved_name": saved_name,
            # Absolute: it is pasted into a provider's settings, far from this site.
            "hook_url": request.build_absolute_uri(reverse("provider_hook", args=[connection.hook_token])),
            # Shown once, on this answer only (PrivateCacheMiddleware makes it no-store).
            "new_hook_secret": new_hook_secret,
        },
    )


@require_POST
@login_required
def connection_hook(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The webhook's own actions: generate a signing secret here (shown once, on the page
    this answers with), or give the webhook a new address (the old one stops working)."""
    membership = membership_for(request.user, slug, Action.MANAGE_CONNECTIONS)
    workspace = membership.workspace
    connection = _connection(membership, pk)
    action = request.POST.get("action")
    if action == "generate_secret":
        secret = generate_hook_secret()
        with transaction.atomic():
            connection.set_hook_secret(secret)
            connection.save(update_fields=["hook_secret_encrypted", "updated_at"])
            AuditEntry.record(
                workspace, request.user, Kind.CONNECTION_CHANGED, connection.name, "webhook secret generated"
            )
        form = ConnectionForm(instance=connection, workspace=workspace)
        return _edit_page(request, workspace, form, connection, connection.name, new_hook_secret=secret)
    if action == "new_address":
        with transaction.atomic():
            connection.regenerate_hook_token()
            AuditEntry.record(
                workspace, request.user, Kind.CONNECTION_CHANGED, connection.name, "webhook address replaced"
            )
        messages.success(request, "The webhook has a new address: point your provider at it.")
        return redirect("teams:connection_edit", workspace.slug, connection.pk)
    messages.warning(request, "Nothing changed.")
    return redirect("teams:connection_edit", workspace.slug, connection.pk)


@require_POST
@login_required
def connection_test(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Test the connection now; htmx gets its row back with the outcome, a plain form post
    a redirect to the list with the outcome as a message."""
    membership = membership_for(request.user, slug, Action.MANAGE_CONNECTIONS)
    connection = _connection(membership, pk)
    outcome = run_test(connection)
    if request.htmx:
        return render(
            request,
            "teams/_connection_row.html",
            {
                "row": ConnectionRow.of(connection, outcome),
                "workspace": membership.workspace,
                "manages": True,
            },
        )
    level = messages.SUCCESS if outcome.ok else messages.WARNING
    text = f"{connection.name}: {outcome.message}" + (
        f" The provider said: {outcome.detail}" if outcome.detail else ""
    )
    messages.add_message(request, level, text)
    return redirect(_list_url(membership.workspace))


@require_http_methods(["GET", "POST"])
@login_required
def connection_remove(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Remove a connection after a confirmation. Never while tasks use it (they would have to
    move to another provider, which only the people tracking them should decide): the page
    says how many, and that they must stop being tracked first."""
    membership = membership_for(request.user, slug, Action.MANAGE_CONNECTIONS)
    workspace = membership.workspace
    connection = _connection(membership, pk)
    if request.method == "POST" and not _usage(connection)["in_use"]:
        name = connection.name
        try:
            with transaction.atomic():
                # Finished attempts to start a video on it are history of a provider that is
                # going away; an attempt still in flight counts as a use (see _usage).
                connection.submissions.filter(state__in=_FINISHED_SUBMISSIONS).delete()
                connection.delete()
                AuditEntry.record(workspace, request.user, Kind.CONNECTION_REMOVED, name)
        except RestrictedError:
            pass  # a task arrived meanwhile: show the page again, with the new count
        else:
            messages.success(request, f"Connection {name} removed.")
            return redirect(_list_url(workspace))
    usage = _usage(connection)
    status = 409 if request.method == "POST" else 200
    return render(
        request,
        "teams/connection_remove.html",
        {"workspace": workspace, "connection": connection, **usage},
        status=status,
    )


# Submission states after which nothing more happens to the attempt.
_FINISHED_SUBMISSIONS = (Submission.State.CREATED, Submission.State.REJECTED, Submission.State.NOT_CREATED)


def _usage(connection: ProviderConnection) -> dict[str, Any]:
    tasks = connection.tasks.count()
    starting = connection.submissions.exclude(state__in=_FINISHED_SUBMISSIONS).count()
    history = connection.submissions.filter(state__in=_FINISHED_SUBMISSIONS).count()
    return {
        "task_count": tasks,
        "starting_count": starting,
        "history_count": history,
        "in_use": bool(tasks or starting),
    }
