"""Drop action_audit's own indexes on workspace_id and job_id: composite indexes lead with each.

Only the indexes go, concurrently, so writes carry on. AlterField alone would also drop and re-add
the foreign keys, checking every row under a lock.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "action_audit_workspace_id_bc420c4b": '"workspace_id"',
    "action_audit_workspace_id_bc420c4b_like": '"workspace_id" varchar_pattern_ops',
    "action_audit_job_id_c7720209": '"job_id"',
}


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [
        ("audit", "0006_audit_archive"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="actionaudit",
                    name="job",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="actions",
                        to="orchestrator.job",
                    ),
                ),
                migrations.AlterField(
                    model_name="actionaudit",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="action_audits",
                        to="orchestrator.workspace",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"',
                    reverse_sql=(
                        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" '
                        f'ON "action_audit" ({columns})'
                    ),
                )
                for name, columns in INDEXES.items()
            ],
        ),
    ]
