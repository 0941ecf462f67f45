"""Celery tasks: thin adapters that load by id and call one service function."""

from celery import shared_task

from orchestrator import execution, services
from orchestrator.exceptions import ModelUnavailable


# Unbounded Celery retries on purpose: execute_job counts attempts in the job row and fails the
# job at JOB_MAX_ATTEMPTS, so the bound lives in one place and survives worker restarts.
@shared_task(
    autoretry_for=(ModelUnavailable,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=None,
)
def run_job(job_id: str) -> None:
    execution.execute_job(job_id=job_id)


@shared_task
def requeue_stale_jobs() -> int:
    return services.requeue_stale_jobs()
