"""Job messages pushed by job_queue are the messages Celery itself would send, and run."""

import base64
import json
import uuid

import pytest

from core import log_context, redis_keys
from orchestrator.job_queue import publish_jobs
from orchestrator.models import Job
from orchestrator.tasks import run_job
from tests.factories import make_job
from tests.helpers import metric, scrape, wait_for_job

# Fresh for every message, so they differ between any two messages whoever sends them.
PER_MESSAGE = {"id", "root_id", "correlation_id", "delivery_tag", "reply_to"}


def queued_messages(redis_db) -> list[dict]:
    """The queue's messages in the order workers take them (from the list's tail)."""
    return [json.loads(raw) for raw in reversed(redis_db.lrange(redis_keys.JOB_QUEUE, 0, -1))]


def comparable(message: dict) -> dict:
    """A message without its per-message ids, with its body decoded."""
    return {
        **{k: v for k, v in message.items() if k not in {"headers", "properties", "body"}},
        "headers": {k: v for k, v in message["headers"].items() if k not in PER_MESSAGE},
        "properties": {k: v for k, v in message["properties"].items() if k not in PER_MESSAGE},
        "body": json.loads(base64.b64decode(message["body"])),
    }


def test_a_job_message_is_the_one_celery_sends_for_run_job(redis_db):
    job_id = str(uuid.uuid4())
    tokens = log_context.bind(request_id="req-42")
    try:
        run_job.apply_async(args=[job_id])  # through kombu's own producer
        publish_jobs([job_id])
    finally:
        log_context.unbind(tokens)

    by_celery, ours = queued_messages(redis_db)

    assert comparable(ours) == comparable(by_celery)
    assert ours["headers"]["request_id"] == "req-42"
    task_id = ours["headers"]["id"]
    assert ours["headers"]["root_id"] == ours["properties"]["correlation_id"] == task_id
    assert ours["properties"]["delivery_tag"] != by_celery["properties"]["delivery_tag"]


def test_a_batch_is_taken_in_the_order_given_and_counted_once_per_message(redis_db):
    job_ids = [str(uuid.uuid4()) for _ in range(3)]

    publish_jobs(job_ids)

    taken = [comparable(message)["body"][0] for message in queued_messages(redis_db)]
    assert taken == [[job_id] for job_id in job_ids]
    assert metric(scrape(), "ai_queue_enqueue_total") == 3


def test_nothing_to_publish_sends_nothing(redis_db):
    publish_jobs([])

    assert redis_db.llen(redis_keys.JOB_QUEUE) == 0
    assert metric(scrape(), "ai_queue_enqueue_total") == 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_what_job_queue_publishes(workspace, worker, simulator):
    jobs = [make_job(workspace) for _ in range(3)]

    publish_jobs([job.id for job in jobs])

    for job in jobs:
        assert wait_for_job(job.id).status == Job.Status.SUCCEEDED
