"""A workspace's notification channels, under /w/<slug>/notifications/: managers add,
edit, test, re-enable and remove them. Nothing here sends anything: Send test queues an
event that the worker delivers within seconds. Who may do what is teams.access's call."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from notifications.forms import ChannelForm
from notifications.models import NotificationChannel
from teams.access import membership_for
from teams.models import Membership
from teams.roles import Action

# Channels are managed by whoever manages the workspace's connections (managers, owners).
MANAGE = Action.MANAGE_CONNECTIONS
LOG_SHOWN = 50


def _channel(membership: Membership, pk: int) -> NotificationChannel:
    return get_object_or_404(NotificationChannel.objects.filter(workspace=membership.workspace), pk=pk)


def _list(request: HttpRequest, membership: Membership, form: ChannelForm, *, created=None, status=200):
    workspace = membership.workspace
    channels = NotificationChannel.objects.filter(workspace=workspace).select_related("created_by")
    return render(
        request,
        "notifications/channels.html",
        {"workspace": workspace, "channels": channels, "form": form, "created": created},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@login_required
def channels(request: HttpRequest, slug: str) -> HttpResponse:
    """The list and the add form. A new webhook's signing secret is shown on the answer to
    the POST that made it, once: the page is not a redirect, so a reload cannot show it again."""
    membership = membership_for(request.user, slug, MANAGE)
    form = ChannelForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            return _list(request, membership, form, status=400)
        channel = form.save(membership.workspace, request.user)
        return _list(request, membership, ChannelForm(), created=channel)
    return _list(request, membership, form)


@require_http_methods(["GET", "POST"])
@login_required
def channel_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    membership = membership_for(request.user, slug, MANAGE)
    channel = _channel(membership, pk)
    form = ChannelForm(request.POST or None, channel=channel)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Channel {channel} saved.")
        return redirect("notifications:channel", membership.workspace.slug, channel.pk)
    return render(
        request,
        "notifications/channel.html",
        {
            "workspace": membership.workspace,
            "channel": channel,
            "form": form,
            "log": channel.attempts.all()[:LOG_SHOWN],
        },
        status=400 if form.errors else 200,
    )


@require_POST
@login_required
def channel_test(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    membership = membership_for(request.user, slug, MANAGE)
    channel = _channel(membership, pk)
    if not channel.enabled:
        messages.warning(request, "The channel is disabled: enable it first.")
    else:
        channel.send_test(request.user)
        messages.success(
            request, "Test queued: the worker sends it within seconds. Reload to see it in the log."
        )
    return redirect("notifications:channel", membership.workspace.slug, channel.pk)


@require_POST
@login_required
def channel_enable(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    membership = membership_for(request.user, slug, MANAGE)
    channel = _channel(membership, pk)
    channel.enable()
    messages.success(request, f"Channel {channel} enabled again.")
    return redirect("notifications:channel", membership.workspace.slug, channel.pk)


@require_POST
@login_required
def channel_remove(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    membership = membership_for(request.user, slug, MANAGE)
    channel = _channel(membership, pk)
    name = str(channel)
    channel.delete()
    messages.success(request, f"Channel {name} removed.")
    return redirect("notifications:channels", membership.workspace.slug)
