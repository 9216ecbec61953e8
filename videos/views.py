from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from videos.models import VideoTask


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    tasks = VideoTask.objects.visible_to(request.user)[:100]
    return render(request, "videos/dashboard.html", {"tasks": tasks})


@require_GET
@login_required
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(VideoTask.objects.visible_to(request.user), pk=pk)
    return render(request, "videos/task_detail.html", {"task": task, "events": task.events.all()})
