"""Specification of a job's statuses: only the listed moves happen, each once, by one UPDATE."""

import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from core.transitions import TransitionRefused
from orchestrator import lifecycle
from orchestrator.models import Job
from tests import processes
from tests.config.test_settings import ROOT, child_env
from tests.factories import make_job

Status = Job.Status
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    Status.QUEUED,
    Status.RUNNING,
    Status.SUCCEEDED,
    Status.FAILED,
    Status.CANCELLED,
)

# submit -> queued; claim; progress and lease renewal; finish; hand-back; cancel; the sweeper's
# republish (queued -> queued) and its reclaim of an expired lease (running -> queued | failed).
EXPECTED = {
    QUEUED: {RUNNING, CANCELLED, QUEUED},
    RUNNING: {RUNNING, SUCCEEDED, FAILED, CANCELLED, QUEUED},
    SUCCEEDED: set(),
    FAILED: set(),
    CANCELLED: set(),
}
PAIRS = [(source, target) for source in Status for target in Status]
ALLOWED_MOVES = [(s, t) for s, t in PAIRS if t in EXPECTED[s]]
FORBIDDEN_MOVES = [(s, t) for s, t in PAIRS if t not in EXPECTED[s]]


def test_the_table_holds_exactly_the_moves_the_job_paths_make():
    assert {source: set(targets) for source, targets in lifecycle.ALLOWED.items()} == EXPECTED


@pytest.mark.parametrize(("source", "target"), ALLOWED_MOVES)
def test_an_allowed_move_happens_once(workspace, source, target):
    job = make_job(workspace, status=source)

    assert lifecycle.move(job.pk, source=source, target=target, error_code="moved") is True

    row = Job.objects.get(pk=job.pk)
    assert (row.status, row.error_code) == (target, "moved")
    if source != target:
        # The same move again finds the job no longer in `source`: a second delivery, a
        # second sweeper or a second cancel moves nothing.
        assert lifecycle.move(job.pk, source=source, target=target, error_code="again") is False
        assert Job.objects.get(pk=job.pk).error_code == "moved"


@pytest.mark.parametrize(("source", "target"), FORBIDDEN_MOVES)
def test_a_forbidden_move_is_refused_and_changes_nothing(workspace, source, target):
    job = make_job(workspace, status=source)

    with pytest.raises(TransitionRefused):
        lifecycle.move(job.pk, source=source, target=target, error_code="moved")

    row = Job.objects.get(pk=job.pk)
    assert (row.status, row.error_code) == (source, "")


def test_a_move_with_one_forbidden_source_is_refused_whole(workspace):
    job = make_job(workspace, status=QUEUED)

    with pytest.raises(TransitionRefused):
        lifecycle.move(job.pk, source=(QUEUED, SUCCEEDED), target=CANCELLED)

    assert Job.objects.get(pk=job.pk).status == QUEUED


def test_a_bulk_move_moves_only_the_jobs_still_in_the_source_status(workspace):
    running, queued, done = (make_job(workspace, status=s) for s in (RUNNING, QUEUED, SUCCEEDED))

    moved = lifecycle.move_all(
        [running.pk, queued.pk, done.pk], source=RUNNING, target=FAILED, error_code="swept"
    )

    assert moved == 1
    statuses = dict(Job.objects.values_list("pk", "status"))
    assert statuses == {running.pk: FAILED, queued.pk: QUEUED, done.pk: SUCCEEDED}


def test_a_new_job_starts_queued_and_no_other_way(workspace):
    job = make_job(workspace)  # a factory, to borrow valid field values
    values = {
        "workspace": workspace,
        "client_request_id": "lifecycle-new",
        "request_fingerprint": job.request_fingerprint,
        "messages": job.messages,
        "model": job.model,
        "max_output_tokens": job.max_output_tokens,
    }

    created = lifecycle.create(**values)
    assert Job.objects.get(pk=created.pk).status == QUEUED
    with pytest.raises(TransitionRefused):
        lifecycle.JOBS.create(**{**values, "client_request_id": "x", "status": RUNNING})
    assert not Job.objects.filter(client_request_id="x").exists()


def test_a_claim_takes_a_queued_job_once_and_returns_it_ready_to_run(workspace):
    workspace.webhook_url = "https://hooks.example/ws"
    workspace.save(update_fields=["webhook_url"])
    job = make_job(workspace, status=QUEUED)
    now = timezone.now()
    lease = now + timedelta(minutes=5)

    claimed = lifecycle.claim(job.pk, now=now, lease_expires_at=lease)

    assert claimed is not None
    assert (claimed.pk, claimed.status, claimed.attempts) == (job.pk, RUNNING, job.attempts + 1)
    assert (claimed.started_at, claimed.lease_expires_at) == (now, lease)
    assert claimed.messages == job.messages  # the whole row, no deferred field left to load
    assert claimed.workspace_webhook_url == "https://hooks.example/ws"
    assert Job.objects.get(pk=job.pk).status == RUNNING
    # A second delivery of the same message finds the job running: it claims nothing.
    assert lifecycle.claim(job.pk, now=now, lease_expires_at=lease) is None
    assert Job.objects.get(pk=job.pk).attempts == job.attempts + 1


# A worker of the running release keeps claiming while the next release's migration, on
# another connection, adds a column to the job table. The column and the rows are removed
# afterwards, whatever happens: the test database keeps its schema.
_CLAIM_ACROSS_A_MIGRATION = """
import django
django.setup()
import psycopg
from django.db import connection
from django.utils import timezone
from orchestrator import lifecycle
from orchestrator.models import Job
from tests.factories import make_job, make_workspace

database = connection.settings_dict
migration = psycopg.connect(
    dbname=database["NAME"],
    user=database["USER"],
    password=database["PASSWORD"],
    host=database["HOST"],
    port=database["PORT"],
    autocommit=True,
)
workspace = make_workspace("ws-claim-migration")
try:
    jobs = [make_job(workspace) for _ in range(7)]
    now = timezone.now()
    for job in jobs[:6]:  # psycopg prepares a statement once it has run five times
        assert lifecycle.claim(job.pk, now=now, lease_expires_at=now) is not None
    migration.execute("ALTER TABLE orchestrator_job ADD COLUMN added_by_a_later_release text")
    claimed = lifecycle.claim(jobs[6].pk, now=now, lease_expires_at=now)
    print("claimed" if claimed is not None else "not claimed")
finally:
    connection.close()
    migration.execute("ALTER TABLE orchestrator_job DROP COLUMN IF EXISTS added_by_a_later_release")
    Job.objects.filter(workspace=workspace).delete()
    workspace.delete()
"""


@pytest.mark.django_db
def test_a_prepared_claim_still_runs_after_a_migration_adds_a_column_to_jobs():
    result = subprocess.run(
        [sys.executable, "-c", _CLAIM_ACROSS_A_MIGRATION],
        cwd=ROOT,
        env=child_env(
            DEBUG="true",
            DATABASE_URL=processes.test_database_url(),
            DB_PREPARED_STATEMENTS="true",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "claimed"


@pytest.mark.parametrize("status", [RUNNING, SUCCEEDED, FAILED, CANCELLED])
def test_a_claim_leaves_a_job_that_is_not_queued_alone(workspace, status):
    job = make_job(workspace, status=status)
    now = timezone.now()

    assert lifecycle.claim(job.pk, now=now, lease_expires_at=now) is None
    row = Job.objects.get(pk=job.pk)
    assert (row.status, row.attempts) == (status, job.attempts)
