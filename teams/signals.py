"""Everyone has a workspace of their own from their first sign-in on."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from teams.models import Workspace


@receiver(user_logged_in, dispatch_uid="teams.personal_workspace")
def give_personal_workspace(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    Workspace.objects.personal_for(user)
