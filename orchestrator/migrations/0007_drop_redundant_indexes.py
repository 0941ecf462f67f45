"""Drop the job table's own indexes on workspace_id: two composite indexes lead with it.

Only the indexes go, concurrently, so writes carry on. AlterField alone would also drop and re-add
the foreign key, checking every row under a lock.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "orchestrator_job_workspace_id_9e3df9a8": '"workspace_id"',
    "orchestrator_job_workspace_id_9e3df9a8_like": '"workspace_id" varchar_pattern_ops',
}


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [
        ("orchestrator", "0006_job_api_key"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="job",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="jobs",
                        to="orchestrator.workspace",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"',
                    reverse_sql=(
                        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" '
                        f'ON "orchestrator_job" ({columns})'
                    ),
                )
                for name, columns in INDEXES.items()
            ],
        ),
    ]
