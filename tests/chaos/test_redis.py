"""Redis killed, emptied or unreachable: the API keeps taking jobs, workers carry on when it
returns, and the sweeper republishes whatever Redis lost."""

import shutil
import time

import pytest
import redis

from core import redis_keys
from tests.chaos.harness import settle, wait_for
from tests.chaos.jobs import job_body
from tests.chaos.seed import WORKSPACE

# Each scenario is bounded: a stack's start, its fault and settling, and its stop.
pytestmark = pytest.mark.timeout(180)

JOBS = 30


def kept_keys(stack, request_ids) -> int:
    """How many of these requests' idempotency keys Redis holds."""
    client = redis.Redis.from_url(stack.redis.url())
    return sum(client.exists(redis_keys.idempotency_key(WORKSPACE, crid)) for crid in request_ids)


def running(stack) -> int:
    return sum(1 for job in stack.jobs().values() if job["status"] == "running")


def test_redis_sigkill_with_jobs_in_flight_restarts_from_its_aof(make_stack):
    stack, clients = make_stack()
    # Paced below the worker's capacity, as most of the time: it holds a few messages
    # unacknowledged with a BRPOP outstanding for more when Redis dies.
    clients.submit_paced((job_body(f"aof-{n}", sleep_ms=400) for n in range(JOBS)), interval=0.1)
    wait_for(
        lambda: len(clients.accepted()) >= 10 and running(stack) >= 2,
        timeout=20,
        message="no job in flight",
    )

    before = set(clients.accepted())
    stack.redis.kill()
    time.sleep(2)
    stack.redis.start()
    kept = kept_keys(stack, before)  # read at once: the keys' TTL is a day
    books = settle(stack, clients, since=time.time())

    books.extra["kept"] = f"{kept}/{len(before)}"
    assert not books.problems, books.line() + "\n" + stack.describe_logs()
    # Everything Redis had acknowledged came back from its AOF.
    assert kept == len(before)


def test_redis_restarted_empty_the_sweeper_rebuilds_the_queue(make_stack):
    stack, clients = make_stack()
    # Faster than the worker takes them: messages wait in the queue when Redis loses it all.
    clients.submit_all(job_body(f"empty-{n}", sleep_ms=300) for n in range(JOBS))
    wait_for(lambda: running(stack) >= 2, timeout=20, message="no job in flight")

    before = set(clients.accepted())
    stack.redis.kill()
    shutil.rmtree(stack.redis.data_dir)  # its AOF too: every queued message is gone
    stack.redis.start()
    restarted = time.time()
    assert kept_keys(stack, before) == 0
    books = settle(stack, clients, since=restarted)

    republished = sum(
        1 for job in stack.jobs().values() if job["enqueued_at"].timestamp() > restarted
    )
    books.extra["republished"] = republished
    assert not books.problems, books.line() + "\n" + stack.describe_logs()
    assert republished >= 1


def test_broker_unreachable_while_clients_submit(make_stack):
    stack, clients = make_stack()
    clients.submit_paced((job_body(f"outage-{n}", sleep_ms=100) for n in range(30)), interval=0.4)
    time.sleep(1.5)

    stack.redis.stop()  # refused connections for 10 s, then back with its data
    time.sleep(10)
    stack.redis.start()
    books = settle(stack, clients, since=time.time())

    assert not books.problems, books.line() + "\n" + stack.describe_logs()
