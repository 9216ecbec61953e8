"""The dashboard's pages and htmx fragments. What the signed-in person may see and do is
decided in teams.access, by their role in the workspace: a board or task outside their
workspaces is a 404, an action their role does not allow a 403."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HTMX_STOP_POLLING, HttpResponseClientRedirect

from dashboard.encryption import Unreadable
from teams.access import membership_for, task_for
from teams.context_processors import DENSITIES, DENSITY_SESSION_KEY
from teams.models import AuditEntry, Membership, ProviderConnection, Workspace
from teams.roles import Action, Role, allows
from videos import bulk, downloads, export
from videos.client import NotFound, ProviderError, VideoAPIClient
from videos.forms import CreateVideoForm, RemixForm, TrackTasksForm, create_initial
from videos.listing import Listing
from videos.models import Status, Submission, VideoTask
from videos.safe_fetch import FetchError, FetchFailed, FetchRefused
from videos.submissions import (
    NotRetryable,
    VideoRequest,
    live_retries,
    retry,
    retry_refusal,
    started_with,
    submit,
)
from videos.worker_status import WorkerStatus, worker_running

# How often a page with unfinished tasks asks for news (seconds).
LIVE_EVERY = 3
# How often the board of a shared workspace asks while nothing it shows is running: a
# teammate may add a task at any time. An unchanged answer is a 204 costing three lookups.
IDLE_EVERY = 10
# What a person is told when the chosen connection's key no longer decrypts.
UNREADABLE_KEY = "This connection's key can no longer be read; a manager must enter it again."
# How far before a page's time the live refresh looks for changed rows: writers stamp a
# change before their transaction commits, so a change can land with an earlier time than
# one already seen.
CLOCK_SLACK = timedelta(seconds=5)


def _dashboard_context(membership: Membership, listing: Listing) -> dict:
    workspace = membership.workspace
    tasks = VideoTask.objects.in_workspace(workspace)
    page = listing.page(tasks.select_related("owner", "api_key", "connection"))
    return {
        "workspace": workspace,
        "membership": membership,
        "may": _may(membership.role),
        "listing": listing,
        "page": page,
        # The whole board's, whatever the filters: each count links to its status.
        "counts": tasks.status_counts(),
        "live": _live_attrs(workspace.live_token(), page.ids)
        if _keeps_asking(workspace, page.any_active)
        else None,
        "live_every": LIVE_EVERY if page.any_active else IDLE_EVERY,
    }


def _matching(listing: Listing, workspace: Workspace, counts: dict[str, int]) -> int:
    """How many tasks the filter matches, for "select all N": from the status counts the
    board shows anyway when only a status (or nothing) is chosen, else one COUNT."""
    if not (listing.q or listing.by or listing.model or listing.connection or listing.range):
        return counts[listing.status] if listing.status else sum(counts.values())
    return listing.filter(VideoTask.objects.in_workspace(workspace)).count()


def _keeps_asking(workspace: Workspace, any_active: bool) -> bool:
    """Whether an open board keeps refreshing: while a shown task runs, and on a shared
    workspace always (a teammate may add a task); a personal board with everything
    finished goes quiet."""
    return any_active or not workspace.is_personal


def _may(role: str) -> dict[str, bool]:
    """What the person's role allows, by action name, for templates to show only the
    controls that would work (the views check again on every request)."""
    return {action.value: allows(role, action) for action in Action}


def _listing(request: HttpRequest, workspace: Workspace) -> Listing:
    return Listing.from_query(request.GET, workspace, request.user)


def _connections(workspace: Workspace) -> list[ProviderConnection]:
    """The workspace's connections, read once for both forms of a board."""
    return list(workspace.connections.all())


def _key_unreadable(connection: ProviderConnection | None) -> bool:
    if connection is None:
        return False
    try:
        connection.api_key()
    except Unreadable:
        return True
    return False


def _audit(request: HttpRequest, workspace: Workspace, kind: str, target: str, detail: str = "") -> None:
    AuditEntry.record(workspace, request.user, kind, target, detail)


def _live_attrs(token: str, ids: str) -> str:
    return json.dumps({"token": token, "ids": ids})


def live_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """login_required for the pages' live refreshes: a signed-out htmx request gets a 401
    with `HX-Signed-Out: 1` (and `HX-Login`, the login page coming back to the page the
    person is on) instead of a redirect that htmx would follow and swap the login form into
    the page; static/js/app.js shows "Signed out" with that link. Other requests are
    redirected to the login page as usual."""
    guarded = login_required(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.htmx and not request.user.is_authenticated:
            page = urlsplit(request.htmx.current_url or "")
            back = page.path + (f"?{page.query}" if page.query else "") if page.path else request.path
            response = HttpResponse("Signed out.", status=401, content_type="text/plain")
            response["HX-Signed-Out"] = "1"
            response["HX-Login"] = f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': back})}"
            return response
        return guarded(request, *args, **kwargs)

    return wrapper


@require_GET
@login_required
def dashboard(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    membership = membership_for(request.user, slug)
    membership.mark_used()
    workspace = membership.workspace
    request.workspace = workspace  # the header's switcher marks it (teams.context_processors)
    listing = _listing(request, workspace)
    for problem in listing.problems:
        messages.warning(request, problem)
    context = _dashboard_context(membership, listing)
    may = context["may"]
    connections = _connections(workspace) if may[Action.TRACK] or may[Action.START] else []
    context["form"] = TrackTasksForm(connections=connections) if may[Action.TRACK] else None
    context["create_form"] = CreateVideoForm(connections=connections) if may[Action.START] else None
    context["submissions"] = _open_submissions(membership)
    context["kept"] = VideoTask.objects.in_workspace(workspace).kept_storage()
    context["worker"] = WorkerStatus.current(workspace)
    context["status_choices"] = Status.choices
    # The "added by" filter's people; lazy, and a personal board has no such filter.
    context["members"] = workspace.memberships.select_related("user").order_by("user__username")
    # The filters' choices and "select all N matching": lazy, read where the page shows them.
    context["models"] = (
        VideoTask.objects.in_workspace(workspace)
        .exclude(model="")
        .order_by("model")
        .values_list("model", flat=True)
        .distinct()
    )
    context["matching"] = _matching(listing, workspace, context["counts"])
    # The connection filter, from the forms' list when they read it; only with a choice.
    context["filter_connections"] = (
        connections if may[Action.TRACK] or may[Action.START] else _connections(workspace)
    )
    context["bulk_actions"] = [action for action in bulk.ACTIONS.values() if may[action.action]]
    return render(request, "videos/dashboard.html", context)


@require_GET
@live_login_required
def dashboard_live(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """The dashboard's refresh: nothing (204) when nothing changed, else the changed rows.

    An unchanged refresh costs one lookup of the membership and its workspace by index,
    whatever the number of tasks, and renders no template.
    """
    membership = membership_for(request.user, slug)
    workspace = membership.workspace
    token = workspace.live_token()
    client_token = request.GET.get("token", "")
    if token == client_token:
        return HttpResponse(status=204)

    tasks = VideoTask.objects.in_workspace(workspace).select_related("owner", "api_key", "connection")
    listing = _listing(request, workspace)
    shown = _parse_ids(request.GET.get("ids", ""))
    since = _token_time(client_token)
    if since and shown and _roster(client_token) == _roster(token):
        # The same tasks as before, some changed: send only their rows. A little before
        # the page's time, for a change whose transaction committed after a later one's.
        rows = list(tasks.filter(pk__in=shown, changed_at__gt=since - CLOCK_SLACK))
        context = {"rows": rows, "ids": ",".join(map(str, shown)), "full": False}
        any_active = tasks.filter(pk__in=shown).active().exists()
    else:
        # Tasks were added or removed (a teammate, another tab, the admin): redraw the page.
        page = listing.page(tasks)
        context = {
            "page": page,
            "rows": [],
            "ids": page.ids,
            "full": True,
            "submissions": _open_submissions(membership),
        }
        any_active = page.any_active
    keeps_asking = _keeps_asking(workspace, any_active)
    context.update(
        workspace=workspace,
        membership=membership,
        may=_may(membership.role),
        listing=listing,
        counts=tasks.status_counts(),
        # The kept-copies total changes only when a copy is kept or a task leaves the
        # board: read it then, not on every refresh.
        kept=tasks.kept_storage()
        if context["full"] or any(row.keep_state for row in context["rows"])
        else None,
        live=_live_attrs(token, context["ids"]) if keeps_asking else None,
        live_every=LIVE_EVERY if any_active else IDLE_EVERY,
    )
    # 286: htmx swaps this answer, then stops polling.
    status = 200 if keeps_asking else HTMX_STOP_POLLING
    return render(request, "videos/_dashboard_update.html", context, status=status)


def _open_submissions(membership: Membership) -> QuerySet[Submission]:
    """Recent creates that did not simply succeed: unknown, refused or not created.
    Lazy: read only where a template shows them."""
    return (
        Submission.objects.filter(workspace=membership.workspace)
        .exclude(state=Submission.State.CREATED)
        .order_by("-created_at")[:5]
    )


def _form_answer(
    request: HttpRequest,
    membership: Membership,
    template: str,
    notes: list[tuple[int, str]],
    **context: object,
) -> HttpResponse:
    """The answer to a dashboard form: htmx gets `template` (the form's panel, the list
    redrawn around it); a plain POST gets `notes` as messages and goes back to the board."""
    workspace = membership.workspace
    if not request.htmx:
        for level, text in notes:
            messages.add_message(request, level, text)
        return redirect("videos:board", workspace.slug)
    listing = _listing(request, workspace)
    return render(request, template, {**_dashboard_context(membership, listing), **context})


@require_POST
@login_required
def new_video(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """Start a video at the provider and track it at once. Sent once, never retried."""
    membership = membership_for(request.user, slug, Action.START)
    workspace = membership.workspace
    connections = _connections(workspace)
    form = CreateVideoForm(request.POST, request.FILES, connections=connections)
    submission = None
    if form.is_valid():
        data = form.cleaned_data
        video = VideoRequest(
            prompt=data["prompt"],
            model=data["model"],
            seconds=data["seconds"],
            size=data["size"],
            reference=data["input_reference"],
        )
        connection = data["connection"]
        try:
            client = VideoAPIClient.for_connection(connection)
        except Unreadable:
            form.add_error("connection", UNREADABLE_KEY)
        else:
            with client:
                submission = submit(request.user, video, client, workspace=workspace, connection=connection)
            _audit(
                request,
                workspace,
                AuditEntry.Kind.STARTED,
                submission.task.task_id if submission.task else "",
                _outcome(submission),
            )
    succeeded = submission is not None and submission.state == Submission.State.CREATED
    return _form_answer(
        request,
        membership,
        "videos/_create_result.html",
        _create_notes(form, submission),
        create_form=CreateVideoForm(connections=connections) if succeeded else form,
        submission=submission,
        submissions=_open_submissions(membership),
    )


def _outcome(submission: Submission) -> str:
    """An attempt's outcome in a few words, for the audit trail."""
    if submission.state == Submission.State.CREATED:
        return f"{submission.model} on {submission.connection or 'the deployment default'}".strip()
    return submission.get_state_display()


def _create_notes(form: CreateVideoForm, submission: Submission | None) -> list[tuple[int, str]]:
    if submission is None:
        return [(messages.ERROR, error) for errors in form.errors.values() for error in errors]
    if submission.state == Submission.State.CREATED:
        return [(messages.SUCCESS, f"Video started: now tracking {submission.task.task_id}.")]
    return [(messages.WARNING, submission.error_message)]


def _parse_ids(text: str) -> list[int]:
    # isascii: isdigit() also accepts "²" and full-width digits, which int() refuses or reads.
    parts = text.split(",")[:200]
    return [int(part) for part in parts if part.isascii() and part.isdigit() and len(part) < 19]


def _roster(token: str) -> str:
    """The part of a live token that changes only when tasks are added or removed."""
    return token.partition(".")[0]


def _token_time(token: str) -> datetime | None:
    """The "latest change" a page was drawn at, from its token; None if it is not one of ours."""
    try:
        when = datetime.fromisoformat(token.partition("~")[2])
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


@require_POST
@login_required
def track_tasks(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    membership = membership_for(request.user, slug, Action.TRACK)
    workspace = membership.workspace
    connections = _connections(workspace)
    form = TrackTasksForm(request.POST, connections=connections)
    created: list[VideoTask] = []
    already: list[str] = []
    if form.is_valid():
        connection = form.cleaned_data["connection"]
        # Tracked on a connection whose key is gone, a task would only wait for a manager.
        if _key_unreadable(connection):
            form.add_error("connection", UNREADABLE_KEY)
        else:
            created, already = VideoTask.objects.track(
                request.user, form.entries, workspace=workspace, connection=connection
            )
            for task in created:
                _audit(request, workspace, AuditEntry.Kind.TRACKED, task.task_id, task.label)
    return _form_answer(
        request,
        membership,
        "videos/_track_result.html",
        [(messages.INFO, text) for text in _track_messages(form, created, already)],
        form=TrackTasksForm(connections=connections) if form.is_valid() else form,
        created=created,
        already=already,
        # Each pasted line with the ID read from it, so a wrong guess is seen at once.
        read=_track_read(form, created) if form.is_valid() else [],
        undo=",".join(str(task.pk) for task in created),
        # When nothing was valid, the form's own errors already list every line.
        rejected=form.rejected if form.is_valid() else [],
        tracked=True,
    )


def _track_read(form: TrackTasksForm, created: list[VideoTask]) -> list[dict[str, str]]:
    new = {task.task_id for task in created}
    return [
        {
            "where": item.where,
            "pasted": item.pasted,
            "task_id": item.task_id,
            "source": str(item.source),
            "outcome": "tracked" if item.task_id in new else "already tracked",
        }
        for item in form.found
    ]


# How long after "Track" its Undo still works: long enough to read the panel and notice a
# wrong line, short enough that it cannot remove a task someone has been following since.
UNDO_WINDOW = timedelta(minutes=10)


@require_POST
@login_required
def undo_track(request: HttpRequest, slug: str) -> HttpResponse:
    """Undo a "Track": stop tracking the tasks it just added, and only those. The pks come
    from the page, so they are only a wish: a task of another workspace, added by someone
    else (or by an API key or a webhook), or added more than UNDO_WINDOW ago is left alone."""
    membership = membership_for(request.user, slug, Action.STOP_TRACKING)
    workspace = membership.workspace
    tasks = VideoTask.objects.in_workspace(workspace).filter(
        pk__in=_parse_ids(request.POST.get("tasks", "")),
        owner=request.user,
        added_via=VideoTask.AddedVia.WEB,
        created_at__gte=timezone.now() - UNDO_WINDOW,
    )
    undone = []
    for task in tasks:
        name, task_id = str(task), task.task_id
        task.delete()
        _audit(request, workspace, AuditEntry.Kind.STOPPED_TRACKING, task_id, name if name != task_id else "")
        undone.append(task_id)
    if undone:
        note = f"Undone: stopped tracking {len(undone)} task(s) just added."
    else:
        note = "Nothing to undo: those tasks are gone already, or were added too long ago."
    connections = _connections(workspace)
    return _form_answer(
        request,
        membership,
        "videos/_track_result.html",
        [(messages.INFO, note)],
        form=TrackTasksForm(connections=connections),
        undone=undone,
        undo_note=note,
        tracked=True,
    )


def _track_messages(form: TrackTasksForm, created: list[VideoTask], already: list[str]) -> list[str]:
    texts = []
    if created:
        texts.append(f"Now tracking {len(created)} task(s).")
    if already:
        texts.append("Already tracked: " + ", ".join(already))
    # Without htmx there is no panel: say which IDs were read out of an address or JSON.
    for item in getattr(form, "found", []) if created or already else []:
        if item.source:
            texts.append(f"{item.where}: {item.task_id} ({item.source}).")
    texts.extend(getattr(form, "rejected", []))
    if not form.is_valid():
        texts.extend(error for errors in form.errors.values() for error in errors)
    return texts


@require_GET
@live_login_required
@vary_on_headers("HX-Request")
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task, role = task_for(request.user, pk)
    if request.htmx and request.GET.get("token") == task.live_token():
        return HttpResponse(status=204)
    request.workspace = task.workspace
    context = _detail_context(task, role)
    if request.htmx:
        status = HTMX_STOP_POLLING if task.is_settled else 200
        return render(request, "videos/_task_detail.html", {**context, "fragment": True}, status=status)
    context["worker"] = WorkerStatus.current(task.workspace)
    return render(request, "videos/task_detail.html", context)


@require_POST
@live_login_required
def refresh_task(request: HttpRequest, pk: int) -> HttpResponse:
    task, role = task_for(request.user, pk, Action.REFRESH)
    if task.is_terminal:
        messages.info(request, "This task has finished; there is nothing more to check.")
    elif not worker_running():
        # Made due all the same, so a worker that starts later checks it first.
        task.poll_soon()
        messages.warning(
            request,
            "The worker that checks tasks is not running, so this task cannot be checked now; "
            "it will be checked as soon as the worker is back.",
        )
    elif task.poll_soon():
        messages.success(request, "Checking this task now: the page updates when the provider answers.")
    else:
        messages.info(request, "This task has finished; there is nothing more to check.")
    if request.htmx:
        # Re-read: the page shows the task as it is now, not as it was before the click.
        task.refresh_from_db()
        return render(request, "videos/_task_detail.html", {**_detail_context(task, role), "fragment": True})
    return redirect(_task_url(task))


def _detail_context(task: VideoTask, role: str) -> dict:
    events = list(task.events.all())
    original = started_with(task)
    retries = live_retries(task)
    return {
        # What it was started with here (None: only tracked), and its retry links both ways.
        "started": original,
        "retries": retries,
        "retry_refusal": retry_refusal(task, original, retries) if task.status == Status.FAILED else "",
        "task": task,
        "role": role,
        "role_label": Role(role).label,
        "may": _may(role),
        "events": events,
        "durations": task.phase_durations(events),
        "live_every": LIVE_EVERY,
    }


@require_http_methods(["GET", "POST"])
@login_required
def stop_tracking(request: HttpRequest, pk: int) -> HttpResponse:
    task, _role = task_for(request.user, pk, Action.STOP_TRACKING)
    workspace = task.workspace
    if request.method == "GET":
        request.workspace = workspace
        return render(request, "videos/stop_tracking.html", {"task": task})
    name, task_id = str(task), task.task_id
    task.delete()
    _audit(request, workspace, AuditEntry.Kind.STOPPED_TRACKING, task_id, name if name != task_id else "")
    messages.success(request, f"Stopped tracking {name}.")
    return _go(request, reverse("videos:board", args=[workspace.slug]))


@require_GET
@live_login_required
def worker_status(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    membership = membership_for(request.user, slug)
    context = {"worker": WorkerStatus.current(membership.workspace), "workspace": membership.workspace}
    return render(request, "videos/_worker_status.html", context)


@require_POST
@login_required
def remix_task(request: HttpRequest, pk: int) -> HttpResponse:
    task, _role = task_for(request.user, pk, Action.START)
    form = RemixForm(request.POST)
    if task.status != Status.COMPLETED:
        messages.error(request, "Only a completed video can be remixed.")
    elif not form.is_valid():
        messages.error(request, "Give the remix a prompt.")
    elif _key_unreadable(task.connection):
        messages.error(request, UNREADABLE_KEY)
    else:
        with VideoAPIClient.for_connection(task.connection) as client:
            submission = submit(
                request.user,
                VideoRequest(prompt=form.cleaned_data["prompt"]),
                client,
                task,
                workspace=task.workspace,
                connection=task.connection,
            )
        new_id = submission.task.task_id if submission.task else ""
        _audit(
            request,
            task.workspace,
            AuditEntry.Kind.REMIXED,
            task.task_id,
            f"new task {new_id}" if new_id else submission.get_state_display(),
        )
        if submission.state == Submission.State.CREATED:
            messages.success(request, "Remix started.")
            return _go(request, _task_url(submission.task))
        messages.warning(request, submission.error_message)
    return _go(request, _task_url(task))


@require_POST
@login_required
def retry_task(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a failed video again with the settings it was started with, once (a person's
    click, never the worker's): a new task that links to this one."""
    task, _role = task_for(request.user, pk, Action.START)
    try:
        submission = retry(request.user, task)
    except NotRetryable as refused:
        messages.error(request, f"Not retried: {refused.message}")
        return _go(request, _task_url(task))
    _audit(
        request,
        task.workspace,
        AuditEntry.Kind.STARTED,
        submission.task.task_id if submission.task else "",
        f"retry of {task.task_id}: {_outcome(submission)}",
    )
    if submission.state == Submission.State.CREATED:
        messages.success(request, f"Retried with the same settings: now tracking {submission.task.task_id}.")
        return _go(request, _task_url(submission.task))
    # A lost answer was sent all the same: the worker looks for its video, so no "not".
    lost = submission.state == Submission.State.UNKNOWN
    messages.warning(
        request, submission.error_message if lost else f"Not retried: {submission.error_message}"
    )
    return _go(request, _task_url(task))


@require_GET
@login_required
def duplicate_task(request: HttpRequest, pk: int) -> HttpResponse:
    """The create form filled in with what a video was started with, to change and start
    (it posts to the board's own "New video")."""
    task, _role = task_for(request.user, pk, Action.START)
    original = started_with(task)
    if original is None:
        messages.info(request, "This video was not started here, so its settings are not known.")
        return redirect(_task_url(task))
    request.workspace = task.workspace
    form = CreateVideoForm(initial=create_initial(original), connections=_connections(task.workspace))
    return render(request, "videos/duplicate.html", {"task": task, "started": original, "create_form": form})


@require_http_methods(["GET", "POST"])
@login_required
def delete_remote(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete the video at the provider (not just stop tracking it), after a confirmation."""
    task, _role = task_for(request.user, pk, Action.DELETE_REMOTE)
    if request.method == "GET":
        request.workspace = task.workspace
        return render(request, "videos/delete_remote.html", {"task": task})
    try:
        with VideoAPIClient.for_connection(task.connection) as client:
            client.delete(task.task_id)
    except Unreadable:
        messages.error(request, UNREADABLE_KEY)
        return _go(request, _task_url(task))
    except NotFound:
        pass  # already gone there: the outcome the person asked for
    except ProviderError as error:
        messages.error(request, f"The provider did not delete the video: {error.detail or error.message}")
        return _go(request, _task_url(task))
    task.mark_deleted_at_provider()
    _audit(request, task.workspace, AuditEntry.Kind.DELETED_REMOTE, task.task_id)
    messages.success(request, "The video was deleted at the provider.")
    return _go(request, _task_url(task))


def _task_url(task: VideoTask) -> str:
    return reverse("videos:task_detail", args=[task.pk])


def _go(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_GET
@login_required
def download(request: HttpRequest, pk: int) -> HttpResponse:
    """Stream a finished task's video (or `?variant=thumbnail`) through the dashboard.

    Always as an attachment of a type we choose, except `?inline=1` on the video, which the
    task page's own player asks for; see downloads.protect.
    """
    task, _role = task_for(request.user, pk)
    variant = request.GET.get("variant", "video")
    if variant not in downloads.VARIANTS or not task.can_download:
        raise Http404("No such file for this task.")
    try:
        file = downloads.open_file(task, variant)
    except (downloads.Busy, FetchError) as error:
        return _download_error(task, variant, error)
    response = FileResponse(file.body, content_type=file.content_type)
    if file.content_length is not None:
        response["Content-Length"] = str(file.content_length)
    inline = variant == "video" and bool(request.GET.get("inline"))
    return downloads.protect(response, downloads.file_name(task, variant), inline=inline)


def _download_error(task: VideoTask, variant: str, error: Exception) -> HttpResponse:
    """A download that could not start, said in a short text (an attachment, like the file);
    a 404 when the provider no longer has the file."""
    if isinstance(error, FetchFailed) and error.status_code in (404, 410):
        raise Http404("The provider no longer has this file.") from None
    if isinstance(error, downloads.Busy):
        message, status = "Too many downloads at once; try again in a few seconds.", 503
    elif isinstance(error, FetchRefused):
        message, status = f"Refused to fetch this file: {error.reason}", 502
    else:
        message, status = f"Could not fetch the file from the provider: {error}", 502
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    if status == 503:
        response["Retry-After"] = str(downloads.BUSY_RETRY_AFTER)
    stem = downloads.file_name(task, variant).rsplit(".", 1)[0]
    return downloads.protect(response, f"{stem}-error.txt")


@require_POST
@login_required
def set_density(request: HttpRequest) -> HttpResponse:
    """The board's row density, per person (kept in their session, not per workspace), then
    back to the page the toggle was on."""
    density = request.POST.get("density", "")
    if density in DENSITIES:
        request.session[DENSITY_SESSION_KEY] = density
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("videos:dashboard")
    return redirect(target)


@require_GET
@login_required
def export_csv(request: HttpRequest, slug: str) -> HttpResponse:
    """The board's current filter as CSV, in the board's order, streamed."""
    membership = membership_for(request.user, slug, Action.VIEW)
    workspace = membership.workspace
    listing = _listing(request, workspace)
    tasks = listing.ordered(VideoTask.objects.in_workspace(workspace))
    return export.csv_response(tasks, request.build_absolute_uri, f"{workspace.slug}-tasks.csv")


@require_POST
@login_required
def bulk_action(request: HttpRequest, slug: str) -> HttpResponse:
    """One action on the ticked tasks, or on all that match the filter, after a
    confirmation that says how many; each action needs the role its single form needs."""
    action = bulk.ACTIONS.get(request.POST.get("action", ""))
    membership = membership_for(request.user, slug, action.action if action else Action.VIEW)
    workspace = membership.workspace
    selection = bulk.Selection.from_post(request.POST, workspace, request.user)
    back = selection.listing.href()
    if action is None:
        messages.error(request, "Choose what to do with the selected tasks.")
        return redirect(back)
    tasks = bulk.acted_on(action.name, selection.tasks(workspace))
    if action.name == "csv":
        return export.csv_response(
            selection.listing.ordered(tasks), request.build_absolute_uri, f"{workspace.slug}-selected.csv"
        )
    if not request.POST.get("confirm"):
        selection = selection.pinned(workspace)
        count = bulk.acted_on(action.name, selection.tasks(workspace)).count()
        if not count:
            messages.info(
                request,
                "No selected task to act on." if action.name != "retry" else "No failed task selected.",
            )
            return redirect(back)
        request.workspace = workspace
        context = {
            "action": action,
            "count": count,
            "selection": selection,
            "workspace": workspace,
            "back": back,
        }
        return render(request, "videos/bulk_confirm.html", context)
    if action.name == "stop":
        done = bulk.stop_tracking(tasks, request.user, workspace)
        messages.success(request, f"Stopped tracking {done} task{'s' if done != 1 else ''}.")
    elif action.name == "refresh":
        done = bulk.refresh(tasks)
        messages.success(
            request, f"Asked the worker to check {done} unfinished task{'s' if done != 1 else ''} now."
        )
    else:
        started, refused = bulk.retry_all(tasks, request.user, workspace)
        messages.success(request, f"Retried {started} task{'s' if started != 1 else ''}.")
        for reason in refused[:10]:
            messages.warning(request, f"Not retried: {reason}")
    return redirect(back)
