"""archive_audit moves old final rows to a verified gzip JSON Lines file, then deletes exactly
those rows; it is idempotent and survives a crash at any point."""

import gzip
import hashlib
import json
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from audit.models import ActionAudit, AuditArchive
from tests import factories, processes
from tests.processes import Process, process_env, wait_until

Status = ActionAudit.Status


def archive(output_dir: Path, *extra: str) -> str:
    out = StringIO()
    call_command(
        "archive_audit", "--older-than-days", "90", "--output-dir", str(output_dir), *extra,
        stdout=out,
    )  # fmt: skip
    return out.getvalue()


def archived_rows(output_dir: Path) -> list[dict]:
    rows = []
    for path in sorted(output_dir.glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as lines:
            rows += [json.loads(line) for line in lines]
    return rows


def manifests(output_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(output_dir.glob("*.manifest.json"))]


@pytest.fixture
def rows(workspace):
    """Six rows 100 days old (five final, one still pending) and two rows 10 days old."""
    job = factories.make_job(workspace)
    now = timezone.now()
    old = [
        factories.make_audit(
            job,
            status=status,
            created_at=now - timedelta(days=100, minutes=i),
            arguments={"to": [f"r{i}@example.com"], "subject": "=1+1", "body": "ü\n"},
        )
        for i, status in enumerate(
            [Status.EXECUTED, Status.DENIED, Status.FAILED, Status.UNKNOWN, Status.REJECTED]
        )
    ]
    pending = factories.make_audit(
        job, status=Status.PENDING_APPROVAL, created_at=now - timedelta(days=100)
    )
    young = [
        factories.make_audit(job, created_at=now - timedelta(days=10, minutes=i)) for i in range(2)
    ]
    return {"old": old, "pending": pending, "young": young}


def remaining_ids() -> set[int]:
    return set(ActionAudit.objects.values_list("id", flat=True))


@pytest.mark.django_db
def test_old_final_rows_are_in_the_file_exactly_once_and_gone_from_the_table(rows, tmp_path):
    young_before = {r.pk: r.updated_at for r in rows["young"]}

    output = archive(tmp_path, "--batch-size", "2")

    old_ids = sorted(r.pk for r in rows["old"])
    written = archived_rows(tmp_path)
    assert [r["id"] for r in written] == old_ids
    assert remaining_ids() == {rows["pending"].pk, *young_before}
    assert {r.pk: r.updated_at for r in ActionAudit.objects.filter(pk__in=young_before)} == (
        young_before
    )
    # Every column survives, at full precision.
    first = rows["old"][0]
    archived_first = next(r for r in written if r["id"] == first.pk)
    assert archived_first["arguments"] == first.arguments
    assert archived_first["created_at"] == first.created_at.isoformat()
    assert archived_first["job_id"] == str(first.job_id)
    # The manifest describes the file, and the run is complete.
    (manifest,) = manifests(tmp_path)
    data = (tmp_path / manifest["file"]).read_bytes()
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert (manifest["rows"], manifest["first_id"], manifest["last_id"]) == (
        5,
        old_ids[0],
        old_ids[-1],
    )
    assert manifest["completed_at"] is not None
    assert "archived 5 rows" in output


@pytest.mark.django_db
def test_a_second_run_archives_nothing_more(rows, tmp_path):
    archive(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())

    output = archive(tmp_path)

    assert "archived 0 rows" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    assert len(archived_rows(tmp_path)) == 5


@pytest.mark.django_db
def test_dry_run_changes_nothing(rows, tmp_path):
    before = remaining_ids()

    output = archive(tmp_path / "archive", "--dry-run")

    assert "5 final rows" in output
    assert remaining_ids() == before
    assert not (tmp_path / "archive").exists()
    # Positive control: the same call without --dry-run does archive.
    archive(tmp_path / "archive")
    assert len(remaining_ids()) == len(before) - 5


@pytest.mark.django_db
def test_a_file_left_without_manifest_is_discarded_and_its_rows_archived_once(rows, tmp_path):
    (tmp_path / "action_audit-20260101T000000000000Z.jsonl.gz.partial").write_bytes(b"half")
    (tmp_path / "action_audit-000000000001-000000000002.jsonl.gz").write_bytes(b"unverified")

    output = archive(tmp_path)

    assert "discarded unfinished file action_audit-000000000001-000000000002" in output
    assert [p.name.endswith((".jsonl.gz", ".manifest.json")) for p in tmp_path.iterdir()] == [
        True,
        True,
    ]
    assert sorted(r["id"] for r in archived_rows(tmp_path)) == sorted(r.pk for r in rows["old"])


def run_archiver_in_a_process(output_dir: Path) -> Process:
    return Process(
        "archive_audit",
        [
            sys.executable,
            "manage.py",
            "archive_audit",
            "--older-than-days",
            "90",
            "--output-dir",
            str(output_dir),
        ],
        process_env(),
    )


def archiver_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        # Inside a transaction, pg_stat_activity is a snapshot unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE 'DELETE FROM action_audit%%' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def crash_archiver_before_its_delete(output_dir: Path) -> None:
    """Hold a lock that lets the archiver read and write its file but blocks its DELETE, then
    kill it there: the file and its manifest are written, no row is deleted yet."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE action_audit IN SHARE MODE")
        archiver = run_archiver_in_a_process(output_dir)
        try:
            wait_until(archiver_waits_on_a_lock, timeout=30, message="archiver never blocked")
        finally:
            archiver.kill()
    # The killed client's backend notices only once its DELETE gets the lock; it then rolls
    # back and ends, releasing its advisory lock.
    wait_until(lambda: not advisory_locks(), timeout=30, message="archiver backend lingers")


def advisory_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_crash_between_writing_and_deleting_loses_and_duplicates_nothing(rows, tmp_path):
    old_ids = sorted(r.pk for r in rows["old"])
    crash_archiver_before_its_delete(tmp_path)
    (manifest,) = manifests(tmp_path)
    assert manifest["completed_at"] is None
    assert set(old_ids) <= remaining_ids()

    output = archive(tmp_path)

    assert "finished an interrupted run: deleted 5 rows" in output
    assert "archived 0 rows" in output
    assert [r["id"] for r in archived_rows(tmp_path)] == old_ids
    assert remaining_ids() == {rows["pending"].pk, *(r.pk for r in rows["young"])}
    (manifest,) = manifests(tmp_path)
    assert manifest["completed_at"] is not None


@pytest.mark.django_db(transaction=True)
def test_an_altered_archive_file_stops_the_rerun_before_any_delete(rows, tmp_path):
    crash_archiver_before_its_delete(tmp_path)
    (data_file,) = tmp_path.glob("*.jsonl.gz")
    data_file.write_bytes(gzip.compress(b'{"id": 1}\n'))
    before = remaining_ids()

    with pytest.raises(CommandError, match="sha256 differs"):
        archive(tmp_path)

    assert remaining_ids() == before


RESTORE_SQL = r"""
CREATE TABLE IF NOT EXISTS action_audit_restored (LIKE action_audit);
CREATE TEMP TABLE archive_lines (line jsonb);
\copy archive_lines FROM PROGRAM 'zcat {file}' WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02')
INSERT INTO action_audit_restored
    SELECT (jsonb_populate_record(NULL::action_audit_restored, line)).* FROM archive_lines;
"""


@pytest.mark.django_db(transaction=True)
def test_the_documented_restore_loads_an_archive_back_for_an_investigation(rows, tmp_path):
    archive(tmp_path)
    (data_file,) = tmp_path.glob("*.jsonl.gz")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert RESTORE_SQL.strip().format(file="/archive/FILE.jsonl.gz") in readme

    result = subprocess.run(
        ["psql", processes.test_database_url(), "-v", "ON_ERROR_STOP=1", "-q"],
        input=RESTORE_SQL.format(file=data_file),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, arguments, created_at FROM action_audit_restored ORDER BY id")
        # Django reads jsonb as text through a raw cursor.
        restored = [(pk, json.loads(arguments), created) for pk, arguments, created in cursor]
        cursor.execute("DROP TABLE action_audit_restored")
    assert restored == [
        (r.pk, r.arguments, r.created_at) for r in sorted(rows["old"], key=lambda r: r.pk)
    ]


@pytest.mark.django_db(transaction=True)
def test_an_interrupted_archive_must_be_finished_in_its_own_directory(rows, tmp_path):
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    crash_archiver_before_its_delete(first_dir)

    with pytest.raises(CommandError, match=f"--output-dir {first_dir}"):
        archive(second_dir)
    assert archived_rows(second_dir) == []

    archive(first_dir)
    assert "archived 0 rows" in archive(second_dir)
    assert sorted(r["id"] for r in archived_rows(first_dir)) == sorted(r.pk for r in rows["old"])
    record = AuditArchive.objects.get()
    assert (record.rows, record.directory, record.completed_at is not None) == (
        5,
        str(first_dir.resolve()),
        True,
    )
