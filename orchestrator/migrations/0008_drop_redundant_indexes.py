"""Drop the webhook deliveries' and policy changes' own indexes on workspace_id: a composite
index of each table leads with it.

As in 0007: only the indexes go, concurrently, and the foreign keys stay.
"""

import django.db.models.deletion
from django.db import migrations, models

WEBHOOKS = "orchestrator_webhookdelivery_workspace_id_20978c59"
POLICY = "orchestrator_workspacepolicychange_workspace_id_8effbfdb"
INDEXES = [  # (table, index, its columns)
    ("orchestrator_webhookdelivery", WEBHOOKS, '"workspace_id"'),
    ("orchestrator_webhookdelivery", f"{WEBHOOKS}_like", '"workspace_id" varchar_pattern_ops'),
    ("orchestrator_workspacepolicychange", POLICY, '"workspace_id"'),
    ("orchestrator_workspacepolicychange", f"{POLICY}_like", '"workspace_id" varchar_pattern_ops'),
]


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [
        ("orchestrator", "0007_drop_redundant_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="webhookdelivery",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="webhooks",
                        to="orchestrator.workspace",
                    ),
                ),
                migrations.AlterField(
                    model_name="workspacepolicychange",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="policy_changes",
                        to="orchestrator.workspace",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"',
                    reverse_sql=(
                        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" ({columns})'
                    ),
                )
                for table, name, columns in INDEXES
            ],
        ),
    ]
