"""Workspace API keys: what a team's scripts sign in with (`Authorization: Bearer <key>`).

A key is shown once, when it is made; only a hash of it is stored (SHA-256: a key is 32
random bytes, so a slow hash would add nothing but latency to every call).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

# Every key starts with this, so a leaked one is easy to recognise (and to scan for).
KEY_PREFIX = "vdk_"
# How stale `last_used_at` may be before a request writes it again.
LAST_USED_EVERY = timedelta(minutes=1)


def key_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)

    def by_plaintext(self, plaintext: str) -> ApiKey | None:
        """The live key `plaintext` is, with its workspace; None for anything else."""
        if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 200:
            return None
        return (
            self.active()
            .select_related("workspace", "created_by")
            .filter(key_hash=key_hash(plaintext))
            .first()
        )


class ApiKey(models.Model):
    workspace = models.ForeignKey("teams.Workspace", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    read_only = models.BooleanField(
        default=True, help_text="A read-only key may read, never change anything."
    )
    # The first characters of the key, shown in lists so a person can tell keys apart.
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls, workspace: Any, name: str, *, read_only: bool, created_by: Any = None
    ) -> tuple[ApiKey, str]:
        """A new key and its plaintext, which is shown once and never stored."""
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        key = cls.objects.create(
            workspace=workspace,
            name=name[:100],
            read_only=read_only,
            prefix=plaintext[: len(KEY_PREFIX) + 6],
            key_hash=key_hash(plaintext),
            created_by=created_by,
        )
        return key, plaintext

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            ApiKey.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=self.revoked_at)

    def mark_used(self, now: datetime | None = None) -> None:
        """Record that the key was just used, at most once a minute: a script calling in a
        loop costs one write a minute, not one per request."""
        now = now or timezone.now()
        if self.last_used_at is not None and now - self.last_used_at < LAST_USED_EVERY:
            return
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY)
        ApiKey.objects.filter(stale, pk=self.pk).update(last_used_at=now)
        self.last_used_at = now

    def acting_user(self) -> Any:
        """Who a write made with this key is done as (a task's `owner`): the person who made
        the key; for a key made by `manage.py create_api_key` (or whose maker's account is
        gone), the workspace's longest-standing owner. None when it has no owner at all."""
        if self.created_by is not None:
            return self.created_by
        from teams.models import Membership, Role

        membership = (
            Membership.objects.filter(workspace_id=self.workspace_id, role=Role.OWNER)
            .select_related("user")
            .order_by("created_at", "pk")
            .first()
        )
        return membership.user if membership else None


class KeySubmission(models.Model):
    """A video started through the API, and the key that started it. A create whose answer
    was lost is settled later by the worker (videos.submissions.reconcile), which tracks the
    video it finds: this row is how that task, too, comes to say the key added it
    (api.signals)."""

    submission = models.OneToOneField(
        "videos.Submission", on_delete=models.CASCADE, related_name="api_origin"
    )
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"submission {self.submission_id} by {self.api_key}"

    @staticmethod
    def claim_task(submission: Any, api_key: ApiKey) -> None:
        """Mark the task `submission` made as added by `api_key`: only a task it made (not
        one the workspace tracked before under that ID) and only once."""
        from videos.models import VideoTask

        if submission.task_id is None:
            return
        VideoTask.objects.filter(
            pk=submission.task_id, created_at__gte=submission.created_at, added_via=VideoTask.AddedVia.WEB
        ).update(added_via=VideoTask.AddedVia.API, api_key=api_key)
