"""A workspace's API keys page: managers make keys (each shown once, on the answer to the
form that made it, never again) and revoke them. Who may is decided by teams.access: a
404 outside the workspace, a 403 below manager."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from api.forms import ApiKeyForm
from api.models import ApiKey
from teams.access import membership_for
from teams.roles import Action


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def key_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_for(request.user, slug, Action.MANAGE_API_KEYS)
    workspace = membership.workspace
    request.workspace = workspace
    form = ApiKeyForm(request.POST if request.method == "POST" else None)
    new_key = plaintext = None
    if request.method == "POST" and form.is_valid():
        new_key, plaintext = ApiKey.issue(
            workspace,
            form.cleaned_data["name"],
            read_only=form.cleaned_data["access"] == "read_only",
            created_by=request.user,
        )
        # Rendered, not redirected: the plaintext is in this answer only (never in the
        # session, a message cookie or a URL), and a reload does not show it again.
        form = ApiKeyForm()
    context = {
        "workspace": workspace,
        "form": form,
        "keys": workspace.api_keys.select_related("created_by"),
        "new_key": new_key,
        "plaintext": plaintext,
        "tasks_url": request.build_absolute_uri(reverse("api:tasks")),
        "openapi_url": request.build_absolute_uri(reverse("api:openapi")),
    }
    return render(request, "api/keys.html", context, status=201 if plaintext else 200)


@require_POST
@login_required
def key_revoke(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    membership = membership_for(request.user, slug, Action.MANAGE_API_KEYS)
    key = get_object_or_404(membership.workspace.api_keys, pk=pk)
    key.revoke()
    messages.success(request, f"API key {key.name} revoked: it no longer works.")
    return redirect("api_keys:list", membership.workspace.slug)
