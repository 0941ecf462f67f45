"""Celery tasks: thin adapters that load by id and call one service function."""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from orchestrator import execution, services, webhooks
from orchestrator.exceptions import ModelUnavailable


# Unbounded Celery retries on purpose: execute_job counts attempts in the job row and fails the
# job at JOB_MAX_ATTEMPTS, so the bound lives in one place and survives worker restarts. A
# database error (PostgreSQL down or restarted) is retried the same way: the worker backs off
# and resumes when it answers; execute_job has handed the job back if it had claimed it.
@shared_task(
    autoretry_for=(ModelUnavailable, OperationalError, InterfaceError),
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


# Unbounded here too: deliver_webhook stops at the delivery's retry_until. The gap stays under
# the broker's visibility timeout, or Redis would hand a waiting retry to a second worker.
@shared_task(
    autoretry_for=(webhooks.WebhookDeliveryFailed,),
    retry_backoff=settings.WEBHOOK_RETRY_BACKOFF_SECONDS,
    retry_backoff_max=min(1800, settings.BROKER_VISIBILITY_TIMEOUT_SECONDS // 2),
    retry_jitter=False,
    max_retries=None,
)
def deliver_webhook(delivery_id: str) -> None:
    webhooks.deliver_webhook(delivery_id=delivery_id)
