# Provider webhooks in: each connection's hook token, signing secret and last event, and the
# event IDs already acted on (replay protection).

from __future__ import annotations

import secrets

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import teams.models


def fill_tokens(apps, schema_editor) -> None:
    # One token per existing connection: a callable default is evaluated once for a whole
    # AddField, which would give every row the same (unique!) value.
    ProviderConnection = apps.get_model("teams", "ProviderConnection")
    for pk in ProviderConnection.objects.filter(hook_token__isnull=True).values_list("pk", flat=True):
        ProviderConnection.objects.filter(pk=pk).update(hook_token=secrets.token_urlsafe(24))


class Migration(migrations.Migration):
    dependencies = [
        ("teams", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="providerconnection",
            name="hook_token",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(fill_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="providerconnection",
            name="hook_token",
            field=models.CharField(
                default=teams.models.new_hook_token, editable=False, max_length=64, unique=True
            ),
        ),
        migrations.AddField(
            model_name="providerconnection",
            name="hook_secret_encrypted",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name="providerconnection",
            name="last_hook_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="last webhook event"
            ),
        ),
        migrations.CreateModel(
            name="HookDelivery",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("event_id", models.CharField(max_length=255)),
                ("received_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "connection",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="hook_deliveries",
                        to="teams.providerconnection",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "hook deliveries",
                "indexes": [models.Index(fields=["connection", "received_at"], name="hookdelivery_age")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("connection", "event_id"), name="hookdelivery_unique_event"
                    )
                ],
            },
        ),
    ]
