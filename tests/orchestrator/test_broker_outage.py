"""With Redis down the API still takes jobs and /ready says so; the sweeper sends them later.
A worker holding messages when Redis dies reconnects, and every job runs once."""

import json
import time
import urllib.error
import urllib.request

import pytest
import redis

from core import redis_keys
from orchestrator.models import Job
from scripts.local_stores import LocalRedis
from tests.helpers import wait_for_job
from tests.processes import RedisServer, free_port, start_web, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"client_request_id": "outage-1", "prompt": "Hello while the broker is down"}


@pytest.fixture
def redis_server():
    """A throwaway redis-server of our own, so stopping it harms no one else."""
    server = RedisServer(free_port())
    yield server
    server.stop()


@pytest.fixture
def web_without_redis(transactional_db, redis_server):
    """gunicorn started while its Redis is stopped: it comes up, Redis is touched per request."""
    redis_server.stop()
    process, base_url = start_web(REDIS_URL=redis_server.url)
    yield process, base_url
    process.stop()


def request(url: str, *, api_key: str | None = None, body: dict | None = None):
    """(status, headers, JSON body) of a GET, or of a POST when a body is given."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.load(error)


def test_job_accepted_while_redis_is_down_runs_once_redis_is_back(
    web_without_redis, redis_server, api_key, start_worker_with, simulator
):
    web, base_url = web_without_redis

    status, _, job = request(f"{base_url}/ai/jobs", api_key=api_key, body=BODY)
    assert status == 202, (job, web.log()[-3000:])
    assert Job.objects.get(pk=job["id"]).status == Job.Status.QUEUED

    # Idempotency falls back to the unique constraint while the fast path is down.
    status, headers, replay = request(f"{base_url}/ai/jobs", api_key=api_key, body=BODY)
    assert status == 200, (replay, web.log()[-3000:])
    assert headers["Idempotent-Replayed"] == "true"
    assert replay["id"] == job["id"]
    assert Job.objects.count() == 1

    # The message never left; only the beat-scheduled sweeper can send it now.
    redis_server.start()
    worker = start_worker_with(
        beat=True,
        REDIS_URL=redis_server.url,
        SWEEP_INTERVAL_SECONDS="1",
        JOB_REQUEUE_AFTER_SECONDS="1",
    )
    finished = wait_for_job(job["id"])
    assert finished.status == Job.Status.SUCCEEDED, (finished.error_code, worker.log()[-2000:])
    assert simulator.requests() == 1


def test_ready_reports_redis_down_then_recovers(web_without_redis, redis_server):
    _, base_url = web_without_redis

    status, _, body = request(f"{base_url}/ready")

    assert status == 503, body
    assert body["ready"] is False
    assert body["checks"]["redis"]["ok"] is False
    assert isinstance(body["checks"]["redis"]["error"], str)
    assert body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True

    redis_server.start()
    # A worker's heartbeat on the restarted Redis, as a worker reconnecting records it.
    redis.Redis.from_url(redis_server.url).zadd(redis_keys.WORKERS, {"w@host": time.time()})
    status, _, body = request(f"{base_url}/ready")

    assert status == 200, body
    assert body["ready"] is True


# --- A worker survives the loss of its broker ----------------------------------------------


@pytest.fixture
def persistent_redis(tmp_path):
    """A redis-server of our own with its AOF on, as production runs it, to kill or stop."""
    server = LocalRedis(tmp_path / "redis", free_port())
    server.start()
    yield server
    server.stop()


def submit_over_http(base_url: str, api_key: str, name: str, prompt: str) -> str:
    status, _, job = request(
        f"{base_url}/ai/jobs", api_key=api_key, body={"client_request_id": name, "prompt": prompt}
    )
    assert status == 202, job
    return job["id"]


@pytest.mark.parametrize("outage", ["kill", "stop"])
def test_worker_holding_messages_outlives_its_redis_and_runs_every_job_once(
    outage, persistent_redis, api_key, start_worker_with, simulator
):
    web, base_url = start_web(REDIS_URL=persistent_redis.url())
    # With the sweeper, as shipped: it sends what was accepted while Redis was away.
    worker = start_worker_with(
        beat=True,
        REDIS_URL=persistent_redis.url(),
        SWEEP_INTERVAL_SECONDS="1",
        JOB_REQUEUE_AFTER_SECONDS="2",
    )
    pid = worker.popen.pid
    try:
        # Fewer jobs than the worker's prefetch, so that it holds them unacknowledged with a
        # BRPOP outstanding for more: the state in which losing Redis made workers exit.
        held = [
            submit_over_http(base_url, api_key, f"held-{n}", "SLEEP 3000\nslow job")
            for n in range(4)
        ]
        wait_until(
            lambda: Job.objects.filter(pk__in=held, status=Job.Status.RUNNING).count() == 4,
            timeout=15,
        )
        time.sleep(1.2)  # the AOF is written every second

        getattr(persistent_redis, outage)()
        during = [
            submit_over_http(base_url, api_key, f"during-{n}", "accepted while Redis is away")
            for n in range(2)
        ]
        time.sleep(2)
        persistent_redis.start()
        after = [
            submit_over_http(base_url, api_key, f"after-{n}", "sent once Redis is back")
            for n in range(2)
        ]

        jobs = held + during + after
        for job_id in jobs:
            finished = wait_for_job(job_id, timeout=60)
            assert finished.status == Job.Status.SUCCEEDED, (job_id, worker.log()[-3000:])
        # The same process goes on consuming: it neither exited nor was replaced.
        assert worker.popen.poll() is None, worker.log()[-3000:]
        assert worker.popen.pid == pid
        assert "Unrecoverable error" not in worker.log()
        # Every job reached the model exactly once, redeliveries and republished messages
        # included.
        assert simulator.requests() == len(jobs)
        assert sum(job.usage["model_calls"] for job in Job.objects.filter(pk__in=jobs)) == len(jobs)
    finally:
        web.stop()
