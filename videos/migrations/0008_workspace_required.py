from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("videos", "0007_personal_workspaces"),
        ("teams", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="videotask",
            name="workspace",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="tasks", to="teams.workspace"
            ),
        ),
        migrations.AlterField(
            model_name="submission",
            name="workspace",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="submissions", to="teams.workspace"
            ),
        ),
    ]
