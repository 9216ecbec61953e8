"""The database cache's table (`django_cache`), where the API counts each key's requests
when REDIS_URL is not set.

Made here because `migrate` runs everywhere the app does (a PaaS release, `make run`, the
test databases pytest-django creates), and `createcachetable` would otherwise be one more
step to forget. It does nothing for caches that are not database caches (Redis), and
nothing when the table is there already.
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps: Any, schema_editor: Any) -> None:
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
