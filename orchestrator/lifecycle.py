"""A job's statuses: which may follow which, and the one way each move is written.

submit: (new) -> queued. claim: queued -> running. A running job's worker writes its progress and
renews its lease (running -> running), then finishes (running -> succeeded | failed) or hands the
job back (running -> queued). cancel: queued | running -> cancelled. The sweeper republishes
(queued -> queued, a fresh enqueued_at) and reclaims expired leases (running -> queued | failed).
"""

from collections.abc import Iterable
from typing import Any, cast

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
