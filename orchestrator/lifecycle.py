"""A job's statuses: which may follow which, and the one way each move is written.

submit: (new) -> queued. claim: queued -> running. A running job's worker writes its progress and
renews its lease (running -> running), then finishes (running -> succeeded | failed) or hands the
job back (running -> queued). cancel: queued | running -> cancelled. The sweeper republishes
(queued -> queued, a fresh enqueued_at) and reclaims expired leases (running -> queued | failed).
"""

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any, cast

from django.db import connection

from core.transitions import Transitions
from orchestrator.models import Job

Status = Job.Status

ALLOWED: dict[str, frozenset[str]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED, Status.QUEUED}),
    Status.RUNNING: frozenset(
        {Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.QUEUED}
    ),
    # Final: nothing moves a finished job again.
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}
JOBS = Transitions(objects=Job.objects, allowed=ALLOWED, initial=frozenset({Status.QUEUED}))


def create(**values: Any) -> Job:
    """Store a new job, queued."""
    return cast(Job, JOBS.create(status=Status.QUEUED, **values))


def move(job_id: Any, *, source: str | Iterable[str], target: str, **fields: Any) -> bool:
    """Move the job from `source` to `target`, writing `fields`; False if it was not in `source`.

    Raises TransitionRefused for a move ALLOWED does not hold, before anything is written.
    """
    return JOBS.move(Job.objects.filter(pk=job_id), source=source, target=target, **fields) == 1


def move_all(
    job_ids: Iterable[Any], *, source: str | Iterable[str], target: str, **fields: Any
) -> int:
    """`move` for many jobs in one UPDATE; how many moved."""
    return JOBS.move(Job.objects.filter(pk__in=job_ids), source=source, target=target, **fields)


# The tables and columns of orchestrator.models (Django's default names); the claim tests fail
# if a migration renames one.
_CLAIM = """
    UPDATE orchestrator_job AS j
       SET status = %s, attempts = j.attempts + 1, started_at = %s, lease_expires_at = %s
      FROM orchestrator_workspace AS w
     WHERE j.id = %s AND j.status = ANY(%s) AND w.id = j.workspace_id
 RETURNING {job_columns}, w.webhook_url AS workspace_webhook_url
"""


@cache
def _claim_statement() -> str:
    # The model's own columns, not j.*: a column that a newer release's migration adds then
    # changes neither what a process still running this code reads nor the result type of its
    # claim, which PostgreSQL refuses to run once prepared (DB_PREPARED_STATEMENTS): "cached
    # plan must not change result type". Names from the model's metadata, no input.
    quote = connection.ops.quote_name
    columns = ", ".join(f"j.{quote(field.column)}" for field in Job._meta.concrete_fields)
    return _CLAIM.format(job_columns=columns)


def claim(job_id: Any, *, now: datetime, lease_expires_at: datetime) -> Job | None:
    """queued -> running for one delivery of the job's message, returning the claimed row with
    its workspace's webhook URL (`workspace_webhook_url`); None when it was not queued.

    One statement, where the ORM needs two (an UPDATE, then a SELECT): every job pays its claim,
    and the second round trip was a visible part of the worker's database time. The conditional
    UPDATE is the lock, as in `move`.
    """
    sources = JOBS.sources(Status.QUEUED, Status.RUNNING)
    params = [Status.RUNNING, now, lease_expires_at, job_id, sources]
    return next(iter(Job.objects.raw(_claim_statement(), params)), None)
