"""Helpers tests call directly (fixtures live in conftest.py)."""

import time

from django.test import Client
from rest_framework.test import APIClient

from core import redis_keys
from core.redis_client import get_redis
from orchestrator.models import Job


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


def http(url: str, *, body: dict | None = None, headers: dict | None = None, timeout: float = 30):
    """(status, headers, text) of a GET, or of a JSON POST when a body is given; never raises
    on an HTTP error status."""
    import json
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def metric(exposition: str, name: str, **labels: str) -> float | None:
    """The sum of the samples `name` whose labels include `labels`; None if there are none."""
    from prometheus_client.parser import text_string_to_metric_families

    values = [
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]
    return sum(values) if values else None


def scrape(client=None, **headers) -> str:
    """The text exposition /metrics serves (in-process)."""
    response = (client or Client()).get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def raw_call(tool_name: str, arguments: str) -> str:
    """The simulator directive that makes the model call `tool_name` (offered or not) with
    `arguments` exactly as given: any text, JSON or not."""
    import json

    return f"RAW {tool_name} {json.dumps(arguments)}"
