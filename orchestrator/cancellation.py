"""Cancelling a job: stored in PostgreSQL, so it survives worker restarts and late messages."""

from django.conf import settings
from django.utils import timezone

from core import metrics
from core.exceptions import OrchestratorError
from orchestrator import lifecycle
from orchestrator.models import Job
from orchestrator.webhooks import record_job_event

Status = Job.Status


class JobAlreadyFinished(OrchestratorError):
    code = "job_finished"
    status = 409


def cancel_job(*, job: Job) -> Job:
    """Cancel a queued or running job; cancelling a cancelled job again changes nothing.

    A queued job never runs: the worker's claim needs `queued`. A running job's worker finds the
    job no longer `running` at its next step and stops there, before any further model call or
    action (execution.py).
    """
    now = timezone.now()
    cancelled = lifecycle.move(
        job.pk,
        source=(Status.QUEUED, Status.RUNNING),
        target=Status.CANCELLED,
        cancel_requested_at=now,
        finished_at=now,
        lease_expires_at=None,
        error_code="cancelled",
        error_message="cancelled at the client's request",
    )
    job.refresh_from_db()
    if cancelled:
        record_job_event(job_id=job.pk)
        # Counted here, by the one caller whose move won: a running job's worker then finds the
        # job no longer its own and records no outcome (execution._finish).
        metrics.record(
            metrics.counted("ai_jobs_finished", status=Status.CANCELLED),
            metrics.counted(
                "ai_workspace_jobs_finished", workspace=job.workspace_id, status=Status.CANCELLED
            )
            if settings.METRICS_WORKSPACE_LABEL
            else [],
        )
    elif job.status != Status.CANCELLED:
        raise JobAlreadyFinished(f"The job already {job.status}; it cannot be cancelled.")
    return job
