"""Helpers tests call directly (fixtures live in conftest.py)."""

import time

from rest_framework.test import APIClient

from orchestrator import redis_keys
from orchestrator.models import Job
from orchestrator.redis_client import get_redis


def queue_length(queue: str = redis_keys.JOB_QUEUE) -> int:
    """Celery messages waiting in a queue (the job queue unless told)."""
    return get_redis().llen(queue)


def wait_for_job(job_id, *, statuses=Job.FINAL_STATUSES, timeout: float = 30) -> Job:
    """Poll the job row (there is no result backend) until it reaches one of `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        job = Job.objects.get(pk=job_id)
        if job.status in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.status} after {timeout}s")
        time.sleep(0.05)


def submit(client: APIClient, **body):
    """POST /ai/jobs with a JSON body."""
    return client.post("/ai/jobs", body, format="json")
