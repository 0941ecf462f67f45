"""The schema as PostgreSQL holds it, where the models alone cannot show it."""

import pytest
from django.db import connection

# Every index is written on every insert and every non-HOT update; the job table's are written on
# each submit, claim and finish (job_unfinished_idx covers status, so no update of it is HOT).
# Tables keyed on a unique varchar (API keys, workspaces, tasks) keep the pattern-ops twin Django
# gives such a column, so they are not listed.
TABLES = [
    "orchestrator_job",
    "action_audit",
    "orchestrator_webhookdelivery",
    "orchestrator_workspacepolicychange",
    "actions_connection",
]


def plain_index_columns(table: str) -> dict[str, list[str]]:
    """Each plain (no expression, no predicate) index of the table, with its columns in order."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname, array_agg(a.attname ORDER BY k.position)
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            WHERE t.relname = %s AND x.indpred IS NULL AND x.indexprs IS NULL
            GROUP BY i.relname
            """,
            [table],
        )
        return dict(cursor.fetchall())


@pytest.mark.django_db
@pytest.mark.parametrize("table", TABLES)
def test_no_index_is_covered_by_another(table):
    indexes = plain_index_columns(table)

    covered = sorted(
        (name, by)
        for name, columns in indexes.items()
        for by, other in indexes.items()
        if name != by
        and other[: len(columns)] == columns
        and (len(columns) < len(other) or name > by)  # an exact twin is reported once
    )

    assert len(indexes) >= 2  # the query does see the table's indexes
    assert covered == []
