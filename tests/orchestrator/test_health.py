"""Specification of liveness (/health) and readiness (/ready): readiness reports every check
with its latency and error, needs no API key, and turns 503 when a dependency is unreachable."""

import time

import pytest
from django.test import Client, override_settings

from core import workers
from core.redis_client import get_redis
from tests.helpers import queue_length, submit
from tests.processes import RedisServer, free_port, wait_until

CHECKS = {"database", "redis", "queue", "workers", "redis_policy", "migrations"}
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def client():
    """A client with no credentials: probes carry no API key."""
    return Client()


@pytest.fixture
def live_worker(redis_db):
    """A worker's heartbeat, as a running worker records it."""
    workers.record_heartbeat("probe@host")


@pytest.fixture
def redis_unreachable(redis_db):
    """Point the process's Redis client at a closed port; the real client is back afterwards."""
    get_redis.cache_clear()
    with override_settings(REDIS_URL=CLOSED_PORT_REDIS):
        yield
    get_redis.cache_clear()


def test_health_says_alive_without_touching_anything(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"alive": True}


@pytest.mark.django_db
def test_ready_reports_every_check_ok_without_an_api_key(client, live_worker):
    response = client.get("/ready")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ready"] is True
    assert set(body["checks"]) == CHECKS
    for name, check in body["checks"].items():
        assert check["ok"] is True, name
        assert check["error"] is None, name
        assert isinstance(check["latency_ms"], int | float), name
        assert check["latency_ms"] >= 0, name
    assert body["checks"]["queue"]["depth"] == 0
    assert body["checks"]["workers"]["live"] == 1
    assert body["checks"]["redis_policy"]["maxmemory_policy"] == "noeviction"


@pytest.mark.django_db(transaction=True)
def test_ready_reports_the_queue_depth(client, api_client):
    response = submit(api_client, client_request_id="depth-1", prompt="Hello")
    assert response.status_code == 202, response.content
    assert queue_length() == 1

    assert client.get("/ready").json()["checks"]["queue"]["depth"] == 1


@pytest.mark.django_db
def test_ready_is_503_naming_the_failed_check_when_redis_is_unreachable(client, redis_unreachable):
    response = client.get("/ready")

    assert response.status_code == 503, response.content
    body = response.json()
    assert body["ready"] is False
    assert set(body["checks"]) == CHECKS
    redis = body["checks"]["redis"]
    assert redis["ok"] is False
    assert redis["error"]
    assert isinstance(redis["latency_ms"], int | float)
    assert body["checks"]["queue"]["ok"] is False
    assert body["checks"]["database"] == {
        "ok": True,
        "latency_ms": body["checks"]["database"]["latency_ms"],
        "error": None,
    }
    assert body["checks"]["migrations"]["ok"] is True


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_probes_answer_only_get(client, method):
    for path in ("/health", "/ready"):
        assert getattr(client, method)(path).status_code == 405


@pytest.mark.django_db
def test_ready_is_503_without_a_live_worker(client, live_worker):
    assert client.get("/ready").status_code == 200  # positive control
    workers.forget_worker("probe@host")
    workers.record_heartbeat("gone@host", now=time.time() - workers.HEARTBEAT_TIMEOUT_SECONDS - 1)

    response = client.get("/ready")

    assert response.status_code == 503
    check = response.json()["checks"]["workers"]
    assert check["ok"] is False
    assert "no Celery worker" in check["error"]


@pytest.mark.django_db
def test_ready_refuses_a_redis_that_may_evict(client):
    # A redis-server of our own: the shared one is never reconfigured.
    server = RedisServer(free_port(), "--maxmemory-policy", "allkeys-lru")
    get_redis.cache_clear()
    try:
        with override_settings(REDIS_URL=server.url):
            workers.record_heartbeat("probe@host")
            response = client.get("/ready")
            get_redis().config_set("maxmemory-policy", "noeviction")
            fixed = client.get("/ready")
    finally:
        get_redis.cache_clear()
        server.stop()

    assert response.status_code == 503, response.content
    check = response.json()["checks"]["redis_policy"]
    assert check["ok"] is False
    assert "allkeys-lru" in check["error"]
    assert fixed.status_code == 200, fixed.content


@pytest.mark.django_db(transaction=True)
def test_ready_follows_a_real_worker_starting_and_stopping(client, start_worker_with):
    assert client.get("/ready").json()["checks"]["workers"]["ok"] is False

    worker = start_worker_with()
    wait_until(lambda: client.get("/ready").status_code == 200, timeout=10)
    assert client.get("/ready").json()["checks"]["workers"]["live"] == 1

    worker.stop()
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["workers"]["ok"] is False
