"""`poll_stats`: what polling costs and whether it is alive, for operators."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from videos.models import Status, VideoTask, WorkerHeartbeat
from videos.worker_status import is_silent


class Command(BaseCommand):
    help = "Print requests spent per finished task, the backlog, and the workers' heartbeats."

    def handle(self, *args: Any, **options: Any) -> None:
        tasks = VideoTask.objects.all()
        counts = tasks.status_counts()
        finished = tasks.terminal().request_spend()
        self.stdout.write(
            f"Finished tasks: {finished['tasks']} "
            f"(completed {counts[Status.COMPLETED]}, failed {counts[Status.FAILED]})"
        )
        if finished["tasks"]:
            self.stdout.write(
                f"Requests per finished task: mean {finished['mean']:.1f}, median {finished['median']}, "
                f"p95 {finished['p95']}, max {finished['max']}"
            )
        active = counts[Status.PENDING] + counts[Status.PROCESSING]
        self.stdout.write(f"Active tasks: {active} (due now: {tasks.due().count()})")
        now = timezone.now()
        for beat in WorkerHeartbeat.objects.order_by("-last_seen_at"):
            state = (
                "stopped" if beat.stopped_at else ("silent" if is_silent(beat.last_seen_at, now) else "alive")
            )
            ago = int((now - beat.last_seen_at).total_seconds())
            self.stdout.write(
                f"Worker {beat.name}: {state}, last seen {ago} s ago, "
                f"{beat.tasks_polled} polls, {beat.errors} errors, {beat.passes} passes"
            )
