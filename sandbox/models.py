from __future__ import annotations

from django.db import models
from django.utils import timezone


class SandboxVideo(models.Model):
    """A fake video of the built-in sandbox provider (see jobs.py)."""

    video_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    prompt = models.TextField(blank=True)
    model = models.CharField(max_length=100, default="sandbox-video-1")
    seconds = models.CharField(max_length=8, default="4")
    size = models.CharField(max_length=32, default="1280x720")
    # How the fake job plays out: how long it runs, whether it fails, and which dialect
    # of status words it answers in.
    duration_seconds = models.PositiveIntegerField(default=60)
    outcome = models.CharField(max_length=16, default="completed")
    vocabulary = models.CharField(max_length=16, default="openai")
    deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.video_id
