"""Publishing job messages onto ai:queue:pending, where the Celery workers take them.

`apply_async` costs about a millisecond a message here: kombu builds a Redis client for every
publish, and Celery routes, reprs the arguments and sends two signals. That was a third of the
submit path. A job message is always the same (run_job, the job id, ai:queue:pending), so this
module builds it with Celery's own message builder, wraps it the way kombu's Redis transport
does, and pushes it together with its enqueue count in one round trip: the count can never
drift from what was pushed. tests/orchestrator/test_job_queue.py holds the envelope to the one
kombu writes, so a Celery or kombu upgrade that changes the format fails a test, not the workers.
"""

import base64
import json
import uuid
from collections.abc import Iterable
from functools import cache

from celery import current_app
from celery.utils.nodenames import anon_nodename

from core import log_context, metrics, redis_keys
from core.redis_client import get_redis

RUN_JOB = "orchestrator.tasks.run_job"


def publish_jobs(job_ids: Iterable) -> None:
    """Queue one run_job message per job and count them, in one Redis round trip.

    A message carries the job id only; the worker re-reads everything else from PostgreSQL.

    Raises redis.RedisError when Redis is unreachable; nothing is pushed or counted then.
    """
    messages = [_message(str(job_id)) for job_id in job_ids]
    if not messages:
        return
    pipe = get_redis().pipeline(transaction=True)
    pipe.lpush(redis_keys.JOB_QUEUE, *messages)  # taken from the tail: first in, first out
    metrics.add_to(pipe, metrics.counted("ai_queue_enqueue", len(messages)))
    pipe.execute()


def _message(job_id: str) -> str:
    task_id = str(uuid.uuid4())
    args = [job_id]
    headers, properties, body, _ = current_app.amqp.as_task_v2(
        task_id,
        RUN_JOB,
        args=args,
        argsrepr=repr(args),
        kwargsrepr="{}",
        origin=_origin(),
        ignore_result=True,
    )
    request_id = log_context.get("request_id")
    if request_id:
        # The worker's log lines for a job carry the id of the request that submitted it.
        headers["request_id"] = request_id
    return json.dumps(
        {
            "body": base64.b64encode(json.dumps(body).encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                **properties,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": redis_keys.JOB_QUEUE},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


@cache
def _origin() -> str:
    return anon_nodename()
