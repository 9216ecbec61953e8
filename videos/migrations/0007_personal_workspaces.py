"""Carry every existing person and task over: each user gets a personal workspace they
own, holding their tasks and submissions, so nobody sees anything they did not see before."""

from __future__ import annotations

from django.conf import settings
from django.db import migrations
from django.utils.text import slugify


def _unique_slug(Workspace, text: str, taken: set[str]) -> str:
    base = slugify(text)[:50].strip("-") or "workspace"
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    taken.add(slug)
    return slug


def personal_workspaces(apps, schema_editor):
    User = apps.get_model(settings.AUTH_USER_MODEL)
    Workspace = apps.get_model("teams", "Workspace")
    Membership = apps.get_model("teams", "Membership")
    VideoTask = apps.get_model("videos", "VideoTask")
    Submission = apps.get_model("videos", "Submission")
    taken = set(Workspace.objects.values_list("slug", flat=True))
    # Historical models do not carry USERNAME_FIELD; the default user model's is "username".
    username_field = getattr(User, "USERNAME_FIELD", "username")
    for user in User.objects.order_by("pk").iterator():
        workspace = Workspace.objects.filter(personal_of=user).first()
        if workspace is None:
            username = str(getattr(user, username_field, "") or f"user-{user.pk}")
            workspace = Workspace.objects.create(
                name=f"{username}'s workspace"[:100],
                slug=_unique_slug(Workspace, username, taken),
                personal_of=user,
            )
            Membership.objects.create(workspace=workspace, user=user, role="owner")
        VideoTask.objects.filter(owner=user, workspace__isnull=True).update(workspace=workspace)
        Submission.objects.filter(owner=user, workspace__isnull=True).update(workspace=workspace)


class Migration(migrations.Migration):
    dependencies = [
        ("videos", "0006_workspaces"),
        ("teams", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(personal_workspaces, migrations.RunPython.noop)]
