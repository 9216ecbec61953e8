"""The dashboard's pages and htmx fragments. Every lookup goes through
`VideoTask.objects.visible_to(request.user)`: another user's task is a 404, never a 403."""

from __future__ import annotations

import json
from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from videos import downloads
from videos.client import NotFound, ProviderError, VideoAPIClient
from videos.forms import CreateVideoForm, RemixForm, TrackTasksForm
from videos.listing import Listing
from videos.models import Status, Submission, VideoTask
from videos.safe_fetch import FetchFailed, FetchRefused
from videos.submissions import VideoRequest, submit
from videos.worker_status import WorkerStatus

# How often a page with unfinished tasks asks for news (seconds).
LIVE_EVERY = 3
STOP_POLLING = 286  # htmx: swap this answer, then stop polling


def _dashboard_context(request: HttpRequest, listing: Listing) -> dict:
    tasks = VideoTask.objects.visible_to(request.user)
    page = listing.page(tasks)
    return {
        "listing": listing,
        "page": page,
        "counts": tasks.status_counts(),
        "live": _live_attrs(tasks.fingerprint(), page.ids) if page.any_active else None,
        "live_every": LIVE_EVERY,
    }


def _live_attrs(token: str, ids: str) -> str:
    return json.dumps({"token": token, "ids": ids})


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    listing = Listing.from_query(request.GET)
    for problem in listing.problems:
        messages.warning(request, problem)
    context = _dashboard_context(request, listing)
    context["form"] = TrackTasksForm()
    context["create_form"] = CreateVideoForm()
    context["submissions"] = _open_submissions(request)
    context["kept"] = VideoTask.objects.visible_to(request.user).kept_storage()
    context["worker"] = WorkerStatus.current()
    context["status_choices"] = Status.choices
    return render(request, "videos/dashboard.html", context)


@require_GET
@login_required
def dashboard_live(request: HttpRequest) -> HttpResponse:
    """The dashboard's refresh: nothing (204) when nothing changed, else the changed rows.

    An unchanged refresh costs one indexed aggregate query and renders no template.
    """
    tasks = VideoTask.objects.visible_to(request.user)
    token = tasks.fingerprint()
    client_token = request.GET.get("token", "")
    if token == client_token:
        return HttpResponse(status=204)

    listing = Listing.from_query(request.GET)
    shown = _parse_ids(request.GET.get("ids", ""))
    since = _token_time(client_token)
    if since and shown and client_token.partition("~")[0] == token.partition("~")[0]:
        # The same tasks as before, some changed: send only their rows.
        rows = list(tasks.filter(pk__in=shown, changed_at__gt=since))
        context = {"rows": rows, "ids": ",".join(map(str, shown)), "full": False}
        any_active = tasks.filter(pk__in=shown).active().exists()
    else:
        # Tasks were added or removed (another tab, the admin): redraw the page.
        page = listing.page(tasks)
        context = {"page": page, "ids": page.ids, "full": True}
        any_active = page.any_active
    context.update(
        listing=listing,
        counts=tasks.status_counts(),
        live=_live_attrs(token, context["ids"]) if any_active else None,
        live_every=LIVE_EVERY,
    )
    response = render(request, "videos/_dashboard_update.html", context)
    if not any_active:
        response.status_code = STOP_POLLING
    return response


def _open_submissions(request: HttpRequest) -> list[Submission]:
    """Recent creates that did not simply succeed: unknown, refused or not created."""
    return list(
        Submission.objects.visible_to(request.user)
        .exclude(state=Submission.State.CREATED)
        .order_by("-created_at")[:5]
    )


@require_POST
@login_required
def new_video(request: HttpRequest) -> HttpResponse:
    """Start a video at the provider and track it at once. Sent once, never retried."""
    form = CreateVideoForm(request.POST, request.FILES)
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
        with VideoAPIClient.from_settings() as client:
            submission = submit(request.user, video, client)
    if not request.htmx:
        if submission is None:
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
        elif submission.state == Submission.State.CREATED:
            messages.success(request, f"Video started: now tracking {submission.task.task_id}.")
        else:
            messages.warning(request, submission.error_message)
        return redirect("/")
    listing = Listing.from_query(request.GET)
    context = _dashboard_context(request, listing)
    succeeded = submission is not None and submission.state == Submission.State.CREATED
    context.update(
        create_form=CreateVideoForm() if succeeded else form,
        submission=submission,
        submissions=_open_submissions(request),
    )
    return render(request, "videos/_create_result.html", context)


def _parse_ids(text: str) -> list[int]:
    # isascii: isdigit() also accepts "²" and full-width digits, which int() refuses or reads.
    parts = text.split(",")[:200]
    return [int(part) for part in parts if part.isascii() and part.isdigit() and len(part) < 19]


def _token_time(token: str) -> datetime | None:
    """The "latest change" a page was drawn at, from its token; None if it is not one of ours."""
    try:
        when = datetime.fromisoformat(token.partition("~")[2])
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


@require_POST
@login_required
def track_tasks(request: HttpRequest) -> HttpResponse:
    form = TrackTasksForm(request.POST)
    created: list[VideoTask] = []
    already: list[str] = []
    if form.is_valid():
        created, already = VideoTask.objects.track(request.user, form.entries)
    if not request.htmx:
        for text in _track_messages(form, created, already):
            messages.info(request, text)
        return redirect("/")
    listing = Listing.from_query(request.GET)
    context = _dashboard_context(request, listing)
    context.update(
        form=TrackTasksForm() if form.is_valid() else form,
        created=created,
        already=already,
        # When nothing was valid, the form's own errors already list every line.
        rejected=form.rejected if form.is_valid() else [],
        tracked=True,
    )
    return render(request, "videos/_track_result.html", context)


def _track_messages(form: TrackTasksForm, created: list[VideoTask], already: list[str]) -> list[str]:
    texts = []
    if created:
        texts.append(f"Now tracking {len(created)} task(s).")
    if already:
        texts.append("Already tracked: " + ", ".join(already))
    texts.extend(getattr(form, "rejected", []))
    if not form.is_valid():
        texts.extend(error for errors in form.errors.values() for error in errors)
    return texts


@require_GET
@login_required
@vary_on_headers("HX-Request")
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(VideoTask.objects.visible_to(request.user), pk=pk)
    if request.htmx and request.GET.get("token") == task.live_token():
        return HttpResponse(status=204)
    context = _detail_context(task)
    if request.htmx:
        response = render(request, "videos/_task_detail.html", {**context, "fragment": True})
        if task.is_settled:
            response.status_code = STOP_POLLING
        return response
    context["worker"] = WorkerStatus.current()
    return render(request, "videos/task_detail.html", context)


@require_POST
@login_required
def refresh_task(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(VideoTask.objects.visible_to(request.user), pk=pk)
    if task.poll_soon():
        messages.success(request, "Asked the worker to check this task now.")
    else:
        messages.info(request, "This task has finished; the provider will not be asked again.")
    if request.htmx:
        # Re-read: the page shows the task as it is now, not as it was before the click.
        task.refresh_from_db()
        return render(request, "videos/_task_detail.html", {**_detail_context(task), "fragment": True})
    return redirect(f"/tasks/{task.pk}/")


def _detail_context(task: VideoTask) -> dict:
    events = list(task.events.all())
    return {
        "task": task,
        "events": events,
        "durations": task.phase_durations(events),
        "live_every": LIVE_EVERY,
    }


@require_http_methods(["GET", "POST"])
@login_required
def stop_tracking(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(VideoTask.objects.visible_to(request.user), pk=pk)
    if request.method == "GET":
        return render(request, "videos/stop_tracking.html", {"task": task})
    name = str(task)
    task.delete()
    messages.success(request, f"Stopped tracking {name}.")
    if request.htmx:
        return HttpResponseClientRedirect("/")
    return redirect("/")


@require_GET
@login_required
def worker_status(request: HttpRequest) -> HttpResponse:
    return render(request, "videos/_worker_status.html", {"worker": WorkerStatus.current()})


@require_POST
@login_required
def remix_task(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(VideoTask.objects.visible_to(request.user), pk=pk)
    form = RemixForm(request.POST)
    if task.status != Status.COMPLETED:
        messages.error(request, "Only a completed video can be remixed.")
    elif not form.is_valid():
        messages.error(request, "Give the remix a prompt.")
    else:
        with VideoAPIClient.from_settings() as client:
            submission = submit(request.user, VideoRequest(prompt=form.cleaned_data["prompt"]), client, task)
        if submission.state == Submission.State.CREATED:
            messages.success(request, "Remix started.")
            return _go(request, f"/tasks/{submission.task.pk}/")
        messages.warning(request, submission.error_message)
    return _go(request, f"/tasks/{task.pk}/")


@require_http_methods(["GET", "POST"])
@login_required
def delete_remote(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete the video at the provider (not just stop tracking it), after a confirmation."""
    task = get_object_or_404(VideoTask.objects.visible_to(request.user), pk=pk)
    if request.method == "GET":
        return render(request, "videos/delete_remote.html", {"task": task})
    try:
        with VideoAPIClient.from_settings() as client:
            client.delete(task.task_id)
    except NotFound:
        pass  # already gone there: the outcome the person asked for
    except ProviderError as error:
        messages.error(request, f"The provider did not delete the video: {error.detail or error.message}")
        return _go(request, f"/tasks/{task.pk}/")
    task.mark_deleted_at_provider()
    messages.success(request, "The video was deleted at the provider.")
    return _go(request, f"/tasks/{task.pk}/")


def _go(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_GET
@login_required
def download(request: HttpRequest, pk: int) -> HttpResponse:
    """Stream a finished task's video (or `?variant=thumbnail`) through the dashboard.

    Always as an attachment of a type we choose, except `?inline=1` on the video, which the
    task page's own player asks for; see downloads.protect.
    """
    task = get_object_or_404(VideoTask.objects.visible_to(request.user), pk=pk)
    variant = request.GET.get("variant", "video")
    if variant not in downloads.VARIANTS or not task.can_download:
        raise Http404("No such file for this task.")
    inline = variant == "video" and bool(request.GET.get("inline"))
    filename = downloads.file_name(task, variant)
    kept = {"video": task.kept_file, "thumbnail": task.kept_thumbnail}.get(variant)
    if task.is_kept and kept:
        # Our own copy outlives the provider's link. Local files: no download slot needed.
        response = FileResponse(kept.open("rb"), content_type=downloads.served_type(variant))
        return downloads.protect(response, filename, inline=inline)
    try:
        body = downloads.stream(task, variant)
    except downloads.Busy:
        response = _download_error(
            task, variant, "Too many downloads at once; try again in a few seconds.", status=503
        )
        response["Retry-After"] = str(downloads.BUSY_RETRY_AFTER)
        return response
    except FetchRefused as refused:
        return _download_error(task, variant, f"Refused to fetch this file: {refused.reason}")
    except FetchFailed as failed:
        if failed.status_code in (404, 410):
            raise Http404("The provider no longer has this file.") from None
        return _download_error(task, variant, f"Could not fetch the file from the provider: {failed.reason}")
    response = StreamingHttpResponse(body, content_type=body.content_type)
    if body.content_length is not None:
        response["Content-Length"] = str(body.content_length)
    return downloads.protect(response, filename, inline=inline)


def _download_error(task: VideoTask, variant: str, message: str, *, status: int = 502) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    stem = downloads.file_name(task, variant).rsplit(".", 1)[0]
    return downloads.protect(response, f"{stem}-error.txt")
