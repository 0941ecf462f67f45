"""Job messages go out through Celery's send_task: one JSON message per job naming only its id,
after the commit, with the submitting request's id, counted once each, and run by a worker."""

import base64
import json
import uuid

import pytest
from django.db import transaction

from core import log_context, redis_keys
from orchestrator.job_queue import RUN_JOB, publish_jobs, publish_jobs_on_commit
from orchestrator.models import Job
from tests.factories import make_job
from tests.helpers import metric, queue_length, scrape, submit, wait_for_job

# /metrics reads the approvals waiting from PostgreSQL at every scrape.
pytestmark = pytest.mark.django_db


def queued_messages(redis_db) -> list[dict]:
    """The queue's messages in the order workers take them (from the list's tail)."""
    return [json.loads(raw) for raw in reversed(redis_db.lrange(redis_keys.JOB_QUEUE, 0, -1))]


def body_of(message: dict) -> list:
    """(args, kwargs, embed) of a Celery protocol 2 message."""
    return json.loads(base64.b64decode(message["body"]))


def test_a_job_message_is_json_naming_run_job_and_only_the_job_id(redis_db):
    job_id = str(uuid.uuid4())

    publish_jobs([job_id])

    (message,) = queued_messages(redis_db)
    assert message["content-type"] == "application/json"
    assert message["headers"]["task"] == RUN_JOB
    args, kwargs, _embed = body_of(message)
    assert (args, kwargs) == ([job_id], {})


def test_a_job_message_carries_the_request_id_of_its_publisher(redis_db):
    tokens = log_context.bind(request_id="req-42")
    try:
        publish_jobs([str(uuid.uuid4())])
    finally:
        log_context.unbind(tokens)

    (message,) = queued_messages(redis_db)
    assert message["headers"]["request_id"] == "req-42"


def test_a_batch_is_taken_in_the_order_given_and_counted_once_per_message(redis_db):
    job_ids = [str(uuid.uuid4()) for _ in range(3)]

    publish_jobs(job_ids)

    assert [body_of(message)[0] for message in queued_messages(redis_db)] == [
        [job_id] for job_id in job_ids
    ]
    assert metric(scrape(), "ai_queue_enqueue_total") == 3


def test_nothing_to_publish_sends_nothing(redis_db):
    publish_jobs([])

    assert redis_db.llen(redis_keys.JOB_QUEUE) == 0
    assert metric(scrape(), "ai_queue_enqueue_total") == 0


@pytest.mark.django_db(transaction=True)
def test_jobs_are_published_only_once_their_transaction_commits(redis_db):
    with transaction.atomic():
        publish_jobs_on_commit([uuid.uuid4()])
        assert queue_length() == 0

    assert queue_length() == 1
    assert metric(scrape(), "ai_queue_enqueue_total") == 1


@pytest.mark.django_db(transaction=True)
def test_jobs_of_a_rolled_back_transaction_are_never_published(redis_db):
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_jobs_on_commit([uuid.uuid4()])
        raise RuntimeError("rolled back")

    assert queue_length() == 0
    assert metric(scrape(), "ai_queue_enqueue_total") == 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_what_job_queue_publishes(workspace, worker, simulator):
    jobs = [make_job(workspace) for _ in range(3)]

    publish_jobs([job.id for job in jobs])

    for job in jobs:
        assert wait_for_job(job.id).status == Job.Status.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_submitted_job_is_published_once_counted_once_and_run_by_a_worker(
    api_client, worker, simulator
):
    response = submit(api_client, client_request_id="publish-once-1", prompt="Hello")

    assert response.status_code == 202, response.content
    assert metric(scrape(), "ai_queue_enqueue_total") == 1
    assert wait_for_job(response.json()["id"]).status == Job.Status.SUCCEEDED
    assert queue_length() == 0
    assert metric(scrape(), "ai_queue_enqueue_total") == 1
    assert simulator.requests() == 1
