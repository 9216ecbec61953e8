"""A workspace's own pages: its people and their roles, invitations, renaming, deleting,
handing over and its audit trail; creating a workspace; joining one from an invitation.

Who may do what is decided in teams.access (a 404 outside the workspace, a 403 for a
role that may not) and teams.roles; every change leaves an AuditEntry.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from teams.access import membership_for
from teams.emails import send_invitation
from teams.forms import DeleteWorkspaceForm, InviteForm, RoleForm, SignupForm, WorkspaceForm, assignable_roles
from teams.models import AuditEntry, Invitation, LastOwner, Membership, Workspace
from teams.roles import RANK, Action, Role, may_assign

logger = logging.getLogger(__name__)

# Where an opened invitation link's token waits in the session while the person signs in
# or makes an account (see accept_invitation).
INVITATION_SESSION_KEY = "teams_invitation_token"
# Audit entries on one page of the trail; an "Older" link continues from the last one.
AUDIT_PAGE_SIZE = 200
# How a login made right after signing up is recorded (django-axes' backend needs a
# request's credentials, which a new account has just been given, not typed).
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"

Kind = AuditEntry.Kind


def _role_name(role: str) -> str:
    return Role(role).label.lower()


def _settings_url(workspace: Workspace) -> str:
    return reverse("teams:settings", args=[workspace.slug])


def _people(workspace: Workspace) -> QuerySet[Membership]:
    """The workspace's people, owners first, then by name."""
    rank = Case(*(When(role=role, then=Value(-n)) for role, n in RANK.items()), output_field=IntegerField())
    return workspace.memberships.select_related("user").annotate(rank=rank).order_by("rank", "user__username")


def _settings_page(
    request: HttpRequest, membership: Membership, status: int = 200, **forms: Any
) -> HttpResponse:
    workspace = membership.workspace
    manages = membership.may(Action.MANAGE_PEOPLE)
    is_owner = membership.may(Action.TRANSFER)
    rows = []
    for person in _people(workspace):
        # Controls only for people whose current role the viewer may hand out: managers
        # never touch an owner; nobody changes themselves here but by stepping down/leaving.
        may_change = manages and person.pk != membership.pk and may_assign(membership.role, person.role)
        rows.append(
            {
                "person": person,
                "is_me": person.pk == membership.pk,
                "roles": assignable_roles(membership.role) if may_change else [],
                "may_remove": may_change,
                "may_make_owner": is_owner and person.role != Role.OWNER,
            }
        )
    context = {
        "workspace": workspace,
        "membership": membership,
        "rows": rows,
        "manages": manages,
        "is_owner": is_owner,
        "reads_audit": membership.may(Action.READ_AUDIT),
        "other_owners": sum(1 for row in rows if row["person"].role == Role.OWNER and not row["is_me"]),
    }
    if manages:
        context["invitations"] = (
            workspace.invitations.pending().select_related("invited_by").order_by("email")
        )
        context["invite_form"] = forms.get("invite_form") or InviteForm(actor_role=membership.role)
    if membership.may(Action.RENAME):
        context["rename_form"] = forms.get("rename_form") or WorkspaceForm(
            workspace=workspace, initial={"name": workspace.name, "slug": workspace.slug}
        )
    return render(request, "teams/workspace_settings.html", context, status=status)


@require_GET
@login_required
def workspace_settings(request: HttpRequest, slug: str) -> HttpResponse:
    return _settings_page(request, membership_for(request.user, slug))


@require_http_methods(["GET", "POST"])
@login_required
def workspace_new(request: HttpRequest) -> HttpResponse:
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        name, slug = form.cleaned_data["name"], form.cleaned_data["slug"]
        try:
            with transaction.atomic():
                workspace = Workspace.objects.create(name=name, slug=slug)
                Membership.objects.create(
                    workspace=workspace, user=request.user, role=Role.OWNER, last_used_at=timezone.now()
                )
        except IntegrityError:
            # Someone took the slug between the form's check and the insert.
            form.add_error("slug", "Another workspace has this address; choose another.")
        else:
            AuditEntry.record(workspace, request.user, Kind.JOINED, request.user.get_username(), "created it")
            messages.success(request, f"Workspace {name} created. Invite your team from its settings.")
            return redirect("videos:board", workspace.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "teams/workspace_new.html", {"form": form}, status=status)


@require_POST
@login_required
def invite(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_for(request.user, slug, Action.MANAGE_PEOPLE)
    workspace = membership.workspace
    form = InviteForm(request.POST, actor_role=membership.role)
    if (
        form.is_valid()
        and workspace.memberships.filter(user__email__iexact=form.cleaned_data["email"]).exists()
    ):
        form.add_error("email", "Someone with this address is already in the workspace.")
    if form.is_valid():
        # Issuing replaces the address's pending invitation: a manager must not withdraw (or
        # lower) an owner's invitation to become an owner that way, as withdraw_invitation
        # does not let them do it directly.
        pending = workspace.invitations.pending().filter(email__iexact=form.cleaned_data["email"])
        if any(not may_assign(membership.role, role) for role in pending.values_list("role", flat=True)):
            form.add_error("email", "An owner invited this address as owner; only an owner may change that.")
    if not form.is_valid():
        return _settings_page(request, membership, status=400, invite_form=form)
    email, role = form.cleaned_data["email"], form.cleaned_data["role"]
    again = workspace.invitations.pending().filter(email__iexact=email).exists()
    invitation, token = Invitation.issue(workspace, email, role, request.user)
    link = request.build_absolute_uri(reverse("teams:accept_invitation", args=[token]))
    try:
        send_invitation(invitation, link, request.user)
    except Exception as error:  # whatever the email backend raises: SMTP errors, refusals, timeouts
        invitation.withdraw()
        logger.warning(
            "invitation to workspace %s: the email could not be sent (%s: %s)",
            workspace.pk,
            type(error).__name__,
            error,
        )
        messages.error(
            request, f"The email to {email} could not be sent, so nobody was invited. Try again later."
        )
        return redirect(_settings_url(workspace))
    detail = f"as {_role_name(role)}" + (" (a fresh link; the earlier one no longer works)" if again else "")
    AuditEntry.record(workspace, request.user, Kind.INVITED, email, detail)
    messages.success(
        request, f"Invitation sent to {email}" + (" again, with a fresh link." if again else ".")
    )
    return redirect(_settings_url(workspace))


@require_POST
@login_required
def withdraw_invitation(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    membership = membership_for(request.user, slug, Action.MANAGE_PEOPLE)
    workspace = membership.workspace
    invitation = get_object_or_404(workspace.invitations.pending(), pk=pk)
    if not may_assign(membership.role, invitation.role):
        raise PermissionDenied("Only an owner may withdraw an invitation to become an owner.")
    if invitation.withdraw():
        AuditEntry.record(workspace, request.user, Kind.INVITATION_WITHDRAWN, invitation.email)
        messages.success(
            request, f"The invitation to {invitation.email} was withdrawn; its link no longer works."
        )
    else:
        messages.info(request, f"{invitation.email} had already accepted the invitation.")
    return redirect(_settings_url(workspace))


@require_POST
@login_required
def change_role(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Give someone another role. Managers hand out roles below owner to people below
    owner; owners hand out any role, owner included (handing over)."""
    membership = membership_for(request.user, slug, Action.MANAGE_PEOPLE)
    workspace = membership.workspace
    person = get_object_or_404(workspace.memberships.select_related("user"), pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
        return redirect(_settings_url(workspace))
    role = form.cleaned_data["role"]
    if not (may_assign(membership.role, person.role) and may_assign(membership.role, role)):
        raise PermissionDenied("Only an owner may make someone an owner or change an owner's role.")
    return _set_role(request, membership, person, role)


@require_POST
@login_required
def step_down(request: HttpRequest, slug: str) -> HttpResponse:
    """An owner becomes a manager, when another owner remains."""
    membership = membership_for(request.user, slug, Action.TRANSFER)
    return _set_role(request, membership, membership, Role.MANAGER)


def _set_role(request: HttpRequest, actor: Membership, person: Membership, role: str) -> HttpResponse:
    workspace = actor.workspace
    name = person.user.get_username()
    if person.role == role:
        messages.info(request, f"{name} is already a {_role_name(role)}.")
        return redirect(_settings_url(workspace))
    try:
        old = person.change_role(role)
    except LastOwner as error:
        messages.error(request, str(error))
        return redirect(_settings_url(workspace))
    AuditEntry.record(workspace, request.user, Kind.ROLE_CHANGED, name, f"{old} → {role}")
    messages.success(request, f"{name} is now a {_role_name(role)}.")
    return redirect(_settings_url(workspace))


@require_POST
@login_required
def remove_member(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Take someone out of the workspace; the tasks they added stay in it."""
    membership = membership_for(request.user, slug, Action.MANAGE_PEOPLE)
    workspace = membership.workspace
    person = get_object_or_404(workspace.memberships.select_related("user"), pk=pk)
    if person.pk == membership.pk:
        return _leave(request, membership)
    if not may_assign(membership.role, person.role):
        raise PermissionDenied("Only an owner may remove an owner.")
    if _is_their_personal(person):
        messages.error(request, _PERSONAL_STAYS)
        return redirect(_settings_url(workspace))
    name = person.user.get_username()
    try:
        person.remove()
    except LastOwner as error:
        messages.error(request, str(error))
        return redirect(_settings_url(workspace))
    AuditEntry.record(workspace, request.user, Kind.MEMBER_REMOVED, name, f"was {_role_name(person.role)}")
    messages.success(request, f"{name} was removed from {workspace.name}; the tasks they added stay.")
    return redirect(_settings_url(workspace))


@require_POST
@login_required
def leave(request: HttpRequest, slug: str) -> HttpResponse:
    return _leave(request, membership_for(request.user, slug))


# Everyone keeps a personal workspace ("/" falls back to it): its person stays in it.
_PERSONAL_STAYS = "This is their personal workspace: its person always stays in it."


def _is_their_personal(membership: Membership) -> bool:
    return membership.workspace.personal_of_id == membership.user_id


def _leave(request: HttpRequest, membership: Membership) -> HttpResponse:
    workspace = membership.workspace
    if _is_their_personal(membership):
        messages.error(request, "This is your personal workspace: you always stay in it.")
        return redirect(_settings_url(workspace))
    try:
        membership.remove()
    except LastOwner as error:
        messages.error(request, str(error))
        return redirect(_settings_url(workspace))
    AuditEntry.record(
        workspace, request.user, Kind.LEFT, request.user.get_username(), f"was {_role_name(membership.role)}"
    )
    messages.success(request, f"You left {workspace.name}.")
    return redirect("videos:dashboard")


@require_POST
@login_required
def rename(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_for(request.user, slug, Action.RENAME)
    workspace = membership.workspace
    form = WorkspaceForm(request.POST, workspace=workspace)
    if not form.is_valid():
        return _settings_page(request, membership, status=400, rename_form=form)
    old = f"{workspace.name} ({workspace.slug})"
    try:
        with transaction.atomic():
            workspace.rename(form.cleaned_data["name"], form.cleaned_data["slug"])
    except IntegrityError:
        form.add_error("slug", "Another workspace has this address; choose another.")
        workspace.refresh_from_db()
        return _settings_page(request, membership, status=400, rename_form=form)
    new = f"{workspace.name} ({workspace.slug})"
    if new != old:
        AuditEntry.record(workspace, request.user, Kind.RENAMED, workspace.name, f"{old} → {new}")
        messages.success(request, f"Renamed to {workspace.name}; its address is now /w/{workspace.slug}/.")
    return redirect(_settings_url(workspace))


@require_http_methods(["GET", "POST"])
@login_required
def delete_workspace(request: HttpRequest, slug: str) -> HttpResponse:
    """Delete the workspace with its tasks, connections and trail, after typing its slug.
    A personal workspace stays: everyone keeps one of their own."""
    membership = membership_for(request.user, slug, Action.DELETE_WORKSPACE)
    workspace = membership.workspace
    if workspace.is_personal and request.method == "POST":
        raise PermissionDenied("A personal workspace cannot be deleted.")
    form = DeleteWorkspaceForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        name, pk = workspace.name, workspace.pk
        workspace.delete()
        # The trail went with the workspace; the log keeps who deleted it.
        logger.info("workspace %s (%r) deleted by user %s", pk, name, request.user.pk)
        messages.success(request, f"The workspace {name} and its tasks were deleted.")
        return redirect("videos:dashboard")
    status = 400 if request.method == "POST" else 200
    context = {"workspace": workspace, "form": form, "tasks": workspace.tasks.count()}
    return render(request, "teams/workspace_delete.html", context, status=status)


@require_GET
@login_required
def audit(request: HttpRequest, slug: str) -> HttpResponse:
    """The trail, newest first, AUDIT_PAGE_SIZE at a time: `before` continues after an
    entry (keyset on (at, pk), which the audit_recent index serves)."""
    membership = membership_for(request.user, slug, Action.READ_AUDIT)
    workspace = membership.workspace
    entries = workspace.audit_entries.order_by("-at", "-pk")
    before = request.GET.get("before", "")
    anchor = (
        workspace.audit_entries.filter(pk=int(before)).first()
        if before.isdigit() and len(before) < 19
        else None
    )
    if anchor is not None:
        entries = entries.filter(Q(at__lt=anchor.at) | Q(at=anchor.at, pk__lt=anchor.pk))
    page = list(entries[: AUDIT_PAGE_SIZE + 1])
    older = page[AUDIT_PAGE_SIZE - 1].pk if len(page) > AUDIT_PAGE_SIZE else None
    context = {
        "workspace": workspace,
        "entries": page[:AUDIT_PAGE_SIZE],
        "older": older,
        "continued": anchor is not None,
    }
    return render(request, "teams/audit.html", context)


@require_GET
def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the email. Its token moves into the session and the browser goes on
    to a page without it (as Django's password reset does), so the token never stands in
    that page's address, a Referer header, the login's `next` or a logged 4xx line. The
    answer is the same whether or not the token is good."""
    request.session[INVITATION_SESSION_KEY] = token[:200]
    return redirect("teams:invitation")


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest) -> HttpResponse:
    """Join the workspace of the invitation opened in this session: a signed-in person
    with one button; a newcomer by making an account first (or signing in)."""
    found = Invitation.objects.by_token(request.session.get(INVITATION_SESSION_KEY, ""))
    if found is None:
        return _invitation_gone(request)
    context: dict[str, Any] = {
        "invitation": found,
        "workspace": found.workspace,
        "role": _role_name(found.role),
    }
    if request.user.is_authenticated:
        if request.method == "POST":
            return _join(request, found)
        return render(request, "teams/invitation_accept.html", context)
    form = SignupForm(request.POST or None, initial={"email": found.email})
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend=MODEL_BACKEND)
        return _join(request, found)
    context["form"] = form
    status = 400 if request.method == "POST" else 200
    return render(request, "teams/invitation_accept.html", context, status=status)


def _join(request: HttpRequest, found: Invitation) -> HttpResponse:
    workspace = found.workspace
    was_in = Membership.objects.filter(workspace=workspace, user=request.user).exists()
    joined = found.accept(request.user)
    request.session.pop(INVITATION_SESSION_KEY, None)
    if joined is None:
        return _invitation_gone(request)
    if was_in:
        joined.mark_used()
        messages.info(request, f"You were already in {workspace.name} as a {_role_name(joined.role)}.")
    else:
        inviter = found.invited_by.get_username() if found.invited_by else "someone"
        detail = f"as {_role_name(joined.role)}, invited by {inviter}"
        AuditEntry.record(workspace, request.user, Kind.JOINED, request.user.get_username(), detail)
        messages.success(request, f"You joined {workspace.name} as a {_role_name(joined.role)}.")
    return redirect("videos:board", workspace.slug)


def _invitation_gone(request: HttpRequest) -> HttpResponse:
    request.session.pop(INVITATION_SESSION_KEY, None)
    # 410: the link existed once, and will not work again.
    return render(request, "teams/invitation_invalid.html", status=410)
