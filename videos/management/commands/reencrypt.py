"""`reencrypt`: every stored secret re-encrypted with the first VIDEO_ENCRYPTION_KEYS key.

The middle step of a key rotation: put the new key first, deploy, run this, then drop the
old key. It exits with status 1 while any secret is still unreadable, so an operator knows
not to drop a key yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models

from dashboard import encryption

# Rows read per query: bounded memory on a large table, few round trips on a small one.
BATCH_SIZE = 500


def _secrets(count: int) -> str:
    return f"{count} secret" if count == 1 else f"{count} secrets"


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret (provider keys) with the first key of VIDEO_ENCRYPTION_KEYS, "
        "so the older keys can be dropped. Exits 1 if any secret cannot be decrypted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        done: Counter[str] = Counter()
        unreadable = 0
        for label, field in encryption.ENCRYPTED_FIELDS:
            model = apps.get_model(label)
            for pk, token in self.stored(model, field):
                try:
                    rotated = encryption.rotate(token)
                except encryption.Unreadable:
                    # Named by model and pk only: never the token, never the key.
                    unreadable += 1
                    self.stderr.write(f"{label} pk={pk}: {field} cannot be decrypted with any key.")
                    continue
                if dry_run or self.write(model, pk, field, token, rotated):
                    done[label] += 1

        total = sum(done.values())
        breakdown = ", ".join(f"{label}: {count}" for label, count in done.items())
        summary = f"{_secrets(total)} ({breakdown})" if breakdown else _secrets(total)
        if dry_run:
            self.stdout.write(f"Would re-encrypt {summary}. Nothing was written (--dry-run).")
        else:
            self.stdout.write(f"Re-encrypted {summary}.")
        if unreadable:
            raise CommandError(
                f"{_secrets(unreadable)} could not be decrypted with any configured key (listed above): "
                "keep the keys they were stored under in VIDEO_ENCRYPTION_KEYS (or SECRET_KEY_FALLBACKS), "
                "or set those secrets again, before dropping a key."
            )

    def stored(self, model: type[models.Model], field: str) -> Iterator[tuple[Any, str]]:
        """(pk, token) of every row with a non-empty `field`, in pk order, a batch at a time.

        Keyset pages rather than one long cursor: the writes in between never hold a
        server-side cursor open, and a row added meanwhile is encrypted under the new key.
        """
        rows = model._default_manager.exclude(**{field: ""}).exclude(**{f"{field}__isnull": True})
        last_pk = None
        while True:
            page = rows.order_by("pk")
            if last_pk is not None:
                page = page.filter(pk__gt=last_pk)
            batch = list(page.values_list("pk", field)[:BATCH_SIZE])
            yield from batch
            if len(batch) < BATCH_SIZE:
                return
            last_pk = batch[-1][0]

    def write(self, model: type[models.Model], pk: Any, field: str, old: str, new: str) -> bool:
        # Only if the value is still the one we read: a key set meanwhile (already under the
        # new key) is not overwritten with an older secret.
        return bool(model._default_manager.filter(pk=pk, **{field: old}).update(**{field: new}))
