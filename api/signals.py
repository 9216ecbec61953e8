"""A lost create started through the API, found later by the worker: its task is the key's."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from api.models import KeySubmission
from videos.models import Submission


@receiver(post_save, sender=Submission, dispatch_uid="api.claim_reconciled_task")
def claim_reconciled_task(
    sender: Any, instance: Submission, update_fields: Any = None, **kwargs: Any
) -> None:
    # Submission.mark_created is the one write that sets a submission's task.
    if not update_fields or "task" not in update_fields or instance.task_id is None:
        return
    origin = KeySubmission.objects.select_related("api_key").filter(submission=instance).first()
    if origin is not None:
        KeySubmission.claim_task(instance, origin.api_key)
