"""The database itself refuses to rewrite or delete audit history (raw SQL, no ORM in the way)."""

import subprocess

import pytest
from django.db import ProgrammingError, connection, transaction

from audit.models import ActionAudit
from tests import factories, processes

Status = ActionAudit.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def job(workspace):
    return factories.make_job(workspace)


def run_sql(sql: str, params: list) -> int:
    """Execute raw SQL in a savepoint, so a refusal leaves the test's transaction usable."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def status_of(row_id: int) -> str:
    return ActionAudit.objects.values_list("status", flat=True).get(pk=row_id)


@pytest.mark.parametrize("status", ActionAudit.FINAL_STATUSES)
def test_final_row_cannot_be_updated(job, status):
    row = factories.make_audit(job, status=status, reason="original")
    with pytest.raises(ProgrammingError, match="is final"):
        run_sql("UPDATE action_audit SET reason = 'forged' WHERE id = %s", [row.pk])
    row.refresh_from_db()
    assert (row.status, row.reason) == (status, "original")


@pytest.mark.parametrize("status", ActionAudit.OPEN_STATUSES)
def test_open_row_moves_to_its_outcome(job, status):
    row = factories.make_audit(job, status=status)
    updated = run_sql(
        "UPDATE action_audit SET status = 'executed', result = '{\"id\": 1}', finished_at = now()"
        " WHERE id = %s",
        [row.pk],
    )
    assert updated == 1
    assert status_of(row.pk) == Status.EXECUTED
    # ...and once final, it stays so.
    with pytest.raises(ProgrammingError, match="is final"):
        run_sql("UPDATE action_audit SET status = %s WHERE id = %s", [status, row.pk])
    assert status_of(row.pk) == Status.EXECUTED


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("arguments", '{"to": ["attacker@example.com"]}'),
        ("action", "task.create"),
        ("call_key", "9.9"),
        ("created_at", "2000-01-01T00:00:00Z"),
    ],
)
def test_open_row_keeps_what_was_proposed(job, column, value):
    row = factories.make_audit(job, status=Status.EXECUTING)
    with pytest.raises(ProgrammingError, match="cannot be changed"):
        run_sql(f"UPDATE action_audit SET {column} = %s WHERE id = %s", [value, row.pk])  # noqa: S608
    assert status_of(row.pk) == Status.EXECUTING


def test_delete_is_refused(job):
    row = factories.make_audit(job)
    with pytest.raises(ProgrammingError, match="cannot be deleted"):
        run_sql("DELETE FROM action_audit WHERE id = %s", [row.pk])
    with pytest.raises(ProgrammingError, match="cannot be deleted"), transaction.atomic():
        ActionAudit.objects.filter(pk=row.pk).delete()
    assert ActionAudit.objects.filter(pk=row.pk).exists()


def test_archiving_transaction_may_delete_final_rows_only(job):
    final = factories.make_audit(job)
    still_open = factories.make_audit(job, status=Status.PENDING_APPROVAL)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL audit.archiving = 'on'")
        cursor.execute("DELETE FROM action_audit WHERE id = %s", [final.pk])
        assert cursor.rowcount == 1
    with (
        pytest.raises(ProgrammingError, match="cannot be archived"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL audit.archiving = 'on'")
        cursor.execute("DELETE FROM action_audit WHERE id = %s", [still_open.pk])
    assert list(ActionAudit.objects.values_list("pk", flat=True)) == [still_open.pk]


@pytest.mark.django_db(transaction=True)
def test_archiving_setting_ends_with_its_transaction(job):
    row = factories.make_audit(job)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL audit.archiving = 'on'")
    with pytest.raises(ProgrammingError, match="cannot be deleted"):
        run_sql("DELETE FROM action_audit WHERE id = %s", [row.pk])
    assert ActionAudit.objects.filter(pk=row.pk).exists()


def test_an_approved_row_goes_through_executing_to_its_outcome(job):
    row = factories.make_audit(job, status=Status.PENDING_APPROVAL)
    run_sql("UPDATE action_audit SET status = 'executing' WHERE id = %s", [row.pk])
    run_sql("UPDATE action_audit SET status = 'failed', reason = 'x' WHERE id = %s", [row.pk])
    assert status_of(row.pk) == Status.FAILED


@pytest.mark.django_db(transaction=True)
def test_pg_dump_of_the_table_keeps_working(job):
    row = factories.make_audit(job, call_key="7.7")
    dump = subprocess.run(
        ["pg_dump", "-t", "action_audit", processes.test_database_url()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "COPY public.action_audit" in dump
    assert f"{row.pk}\t" in dump and "\t7.7\t" in dump
    assert "CREATE TRIGGER action_audit_guard" in dump
