"""Specification of the Celery and Redis client configuration: the queue name, at-least-once
delivery settings, JSON-only messages, the runbook's timeouts and pool sizes, and the shape of
the message a submitted job really leaves in Redis."""

import base64
import json

import pytest
from django.conf import settings
from kombu.transport import redis as kombu_redis
from redis import BlockingConnectionPool

from actions.services import RUN_APPROVED_ACTION
from config.celery import app
from core import redis_keys
from core.publish import publish_on_commit
from core.redis_client import get_redis
from orchestrator.exceptions import ModelUnavailable
from orchestrator.job_queue import RUN_JOB as RUN_JOB_PUBLISHED
from orchestrator.webhooks import DELIVER_WEBHOOK
from tests.helpers import queue_length, submit

RUN_JOB = "orchestrator.tasks.run_job"
SWEEPER = "orchestrator.tasks.requeue_stale_jobs"


@pytest.fixture(scope="module")
def tasks():
    """The task registry as a worker sees it once it has imported the project's task modules."""
    app.loader.import_default_modules()
    return app.tasks


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("task_default_queue", "ai:queue:pending"),
        ("task_serializer", "json"),
        ("result_serializer", "json"),
        ("accept_content", ["json"]),
        ("result_backend", None),
        ("task_ignore_result", True),
        ("task_acks_late", True),
        ("task_reject_on_worker_lost", True),
        ("worker_prefetch_multiplier", 1),
        ("worker_pool", "threads"),
        ("broker_pool_limit", 10),
    ],
)
def test_celery_delivers_at_least_once_json_messages_on_the_named_queue(name, expected):
    assert app.conf[name] == expected


def test_the_queue_is_the_one_the_runbook_counts():
    assert app.conf.task_default_queue == redis_keys.JOB_QUEUE


def test_webhook_deliveries_have_their_own_queue_which_workers_consume_too():
    route = app.amqp.router.route({}, "orchestrator.tasks.deliver_webhook")
    assert route["queue"].name == redis_keys.WEBHOOK_QUEUE
    assert app.amqp.router.route({}, "orchestrator.tasks.run_job")["queue"].name == (
        redis_keys.JOB_QUEUE
    )
    assert {queue.name for queue in app.conf.task_queues} == {
        redis_keys.JOB_QUEUE,
        redis_keys.WEBHOOK_QUEUE,
    }


@pytest.mark.django_db(transaction=True)
def test_a_webhook_delivery_published_by_name_lands_on_the_webhook_queue(redis_db):
    publish_on_commit(DELIVER_WEBHOOK, "delivery-1")

    assert queue_length(redis_keys.WEBHOOK_QUEUE) == 1
    assert queue_length(redis_keys.JOB_QUEUE) == 0


def test_broker_visibility_timeout_outlasts_the_longest_job_and_its_lease():
    options = app.conf.broker_transport_options
    assert options["visibility_timeout"] > settings.LONGEST_JOB_SECONDS
    assert options["visibility_timeout"] > settings.JOB_LEASE_SECONDS


def test_broker_uses_the_runbook_redis_timeout():
    assert app.conf.broker_transport_options["socket_timeout"] == 5


def test_the_broker_is_kombus_own_redis_transport():
    # No subclass of it: tools that read the broker by its URL scheme (Flower) must see Redis.
    with app.connection_for_write() as connection:
        assert type(connection.transport) is kombu_redis.Transport
        assert connection.as_uri().startswith("redis://")


def test_beat_schedule_runs_the_stale_job_sweeper(tasks):
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert SWEEPER in scheduled
    assert SWEEPER in tasks


@pytest.mark.parametrize(
    "name",
    [RUN_JOB_PUBLISHED, RUN_APPROVED_ACTION, DELIVER_WEBHOOK],
    ids=["run_job", "run_approved_action", "deliver_webhook"],
)
def test_every_task_published_by_name_is_one_the_workers_run(tasks, name):
    # Publishers name their task (core.publish) so they import nothing above them: a renamed
    # task must fail here, not leave messages no worker takes.
    assert name in tasks


def test_run_job_is_registered_and_retries_when_the_model_is_unavailable(tasks):
    run_job = tasks[RUN_JOB]
    assert ModelUnavailable in run_job.autoretry_for
    assert run_job.acks_late is True
    assert run_job.reject_on_worker_lost is True


def test_redis_client_has_the_runbook_timeout_and_pool_size():
    pool = get_redis().connection_pool
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.max_connections == 10
    assert pool.connection_kwargs["socket_timeout"] == 5
    assert pool.connection_kwargs["socket_connect_timeout"] == 5


@pytest.mark.django_db(transaction=True)
def test_a_submitted_job_leaves_one_json_message_naming_only_its_id(api_client):
    assert queue_length() == 0

    response = submit(api_client, client_request_id="queue-shape-1", prompt="Hello")

    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    assert queue_length() == 1
    envelope = json.loads(get_redis().lindex(redis_keys.JOB_QUEUE, 0))
    assert envelope["content-type"] == "application/json"
    headers = envelope["headers"]
    assert headers["task"] == RUN_JOB
    assert headers["argsrepr"] == repr([job_id])
    assert headers["kwargsrepr"] == "{}"
    args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
    assert (args, kwargs) == ([job_id], {})
