"""Seed a demo login and a batch of sandbox videos for it to watch.

`make run` calls this before starting the server, so a fresh clone shows tasks moving
within a minute. The first run makes the demo password; later runs keep it, so a browser
signed in before a restart stays signed in (a new password would end its session). It is
printed every time: its hash is in the database as any password's, and the plain text in
`.demo-password` (mode 0600, git-ignored) beside the project, on this machine only and
only under the sandbox. Videos are only added when the demo user has none yet, or with --more.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from sandbox import jobs
from sandbox.models import SandboxVideo
from videos.models import VideoTask

# (label, duration in s, outcome, vocabulary, seconds, size). The short ones finish while
# the visitor is still reading the page; everything is over within two minutes; both
# dialects and both outcomes appear, so every path of the poller is on show.
DEMO_VIDEOS = (
    ("sunset over the harbour", 40, "completed", "openai", "4", "1280x720"),
    ("a paper boat drifting down a rainy street", 45, "completed", "gateway", "8", "720x1280"),
    ("drone flight over an autumn forest", 60, "failed", "gateway", "8", "1280x720"),
    ("time-lapse of a city skyline at night", 75, "failed", "openai", "4", "1920x1080"),
    ("a corgi surfing a small wave", 95, "completed", "gateway", "4", "1280x720"),
    ("macro shot of coffee being poured", 115, "completed", "openai", "12", "1080x1080"),
)


def password_file() -> Path:
    """Where a local run keeps the demo password between runs (DEMO_PASSWORD_FILE: tests)."""
    return Path(getattr(settings, "DEMO_PASSWORD_FILE", "") or Path(settings.BASE_DIR) / ".demo-password")


def kept_password(user: Any) -> str | None:
    """The password an earlier run saved, if it still signs the demo user in (not after a
    new database, nor after someone changed it)."""
    try:
        text = password_file().read_text().strip()
    except OSError:
        return None
    if text and user is not None and user.check_password(text):
        return text
    return None


def save_password(text: str) -> None:
    path = password_file()
    # Created 0600, never readable by others even for a moment; an existing file keeps its
    # mode through O_CREAT, hence the chmod.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")
    path.chmod(0o600)


class Command(BaseCommand):
    help = "Create the demo user (or reset its password) and some sandbox videos for it to track."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", help="Set this password (else the kept one, or a new random one).")
        parser.add_argument("--port", type=int, default=8000, help="Port shown in the printed URL.")
        parser.add_argument("--more", action="store_true", help="Add a new batch even if demo tasks exist.")

    def handle(self, *args: Any, password: str | None, port: int, more: bool, **options: Any) -> None:
        if not settings.VIDEO_SANDBOX:
            # The demo login is an administrator with a printed password: never on a
            # deployment, only where the sandbox provider runs too.
            raise CommandError("seed_demo is for local runs with the sandbox provider (VIDEO_SANDBOX=1).")
        existing = get_user_model().objects.filter(username="demo").first()
        kept = None if password else kept_password(existing)
        # Setting even the same password again changes its hash, which signs every open
        # session out: only a new password is set.
        password = password or kept or secrets.token_urlsafe(9)
        user = self._demo_user(password if kept is None else None)
        if kept is None:
            save_password(password)
        # Only tasks the sandbox still knows: in a database from before the sandbox had an app
        # of its own, the old demo videos were dropped and their tasks can only fail as "not found".
        known = SandboxVideo.objects.filter(deleted=False).values("video_id")
        active = list(VideoTask.objects.filter(owner=user, task_id__in=known).active())
        if active and not more:
            self.stdout.write(f"The demo user has {len(active)} tasks in progress (add more with --more):")
            for task in active:
                self.stdout.write(f"  {task.task_id}  {task.status:<10}  {task}")
        else:
            for task in self._seed(user):
                self.stdout.write(f"  tracking {task.task_id}  {task}")
        self.stdout.write(self.style.SUCCESS(f"Demo login: username demo, password {password}"))
        if kept is not None:
            self.stdout.write(f"  (kept from the last run; delete {password_file().name} for a new one)")
        self.stdout.write(f"Open http://127.0.0.1:{port}/")

    def _demo_user(self, password: str | None) -> Any:
        """The demo user, with `password` set unless None (kept)."""
        user, _ = get_user_model().objects.get_or_create(username="demo")
        # Staff and superuser so the demo shows the admin too.
        user.is_staff = user.is_superuser = True
        if password is not None:
            user.set_password(password)
        user.save()
        return user

    @transaction.atomic
    def _seed(self, user: Any) -> list[VideoTask]:
        now = timezone.now()
        entries = []
        for label, duration, outcome, vocabulary, seconds, size in DEMO_VIDEOS:
            video = jobs.create_video(
                prompt=label,
                seconds=seconds,
                size=size,
                duration_seconds=duration,
                outcome=outcome,
                vocabulary=vocabulary,
                now=now,
            )
            entries.append((video.video_id, f"Demo: {label}"))
        tasks, _already = VideoTask.objects.track(user, entries, note="Tracked from the demo seed.")
        return tasks
