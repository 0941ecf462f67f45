"""Drop the connections' own indexes on workspace_id: the (workspace, provider) unique
constraint leads with it.

Only the indexes go, concurrently, and the foreign key stays (see orchestrator 0007).
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "actions_connection_workspace_id_80079675": '"workspace_id"',
    "actions_connection_workspace_id_80079675_like": '"workspace_id" varchar_pattern_ops',
}


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [
        ("actions", "0002_connection"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="connection",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="connections",
                        to="orchestrator.workspace",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"',
                    reverse_sql=(
                        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" '
                        f'ON "actions_connection" ({columns})'
                    ),
                )
                for name, columns in INDEXES.items()
            ],
        ),
    ]
