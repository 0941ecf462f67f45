"""With Redis down the API still takes jobs and /ready says so; the sweeper sends them later."""

import json
import time
import urllib.error
import urllib.request

import pytest
import redis

from core import redis_keys
from orchestrator.models import Job
from tests.helpers import wait_for_job
from tests.processes import RedisServer, free_port, start_web

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
