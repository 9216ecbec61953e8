"""`manage.py create_api_key <workspace-slug> [--read-only] [--name NAME]`: make an API key
for a workspace and print it alone on stdout, for provisioning scripts
(`KEY=$(python manage.py create_api_key team)`). The key is shown this once; only its hash
is stored. Tasks its writes add are owned by the workspace's longest-standing owner."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.models import ApiKey
from teams.models import Workspace


class Command(BaseCommand):
    help = "Make an API key for a workspace and print it (alone) on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace", help="The workspace's slug.")
        parser.add_argument("--read-only", action="store_true", help="A key that may only read.")
        parser.add_argument("--name", default="", help="What the key is for (default: provisioned).")

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {options['workspace']!r}.")
        name = options["name"].strip() or "provisioned"
        key, plaintext = ApiKey.issue(workspace, name, read_only=options["read_only"])
        self.stdout.write(plaintext)
        kind = "read-only" if key.read_only else "read-write"
        self.stderr.write(f"Made the {kind} API key {key.name!r} ({key.prefix}…) for {workspace.slug}.")
