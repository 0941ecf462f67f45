"""Specification of liveness (/health) and readiness (/ready): readiness reports every check
with its latency and error, needs no API key, and turns 503 when a dependency is unreachable."""

import pytest
from django.test import Client, override_settings

from orchestrator.redis_client import get_redis
from tests.helpers import queue_length, submit

CHECKS = {"database", "redis", "queue", "migrations"}
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def client():
    """A client with no credentials: probes carry no API key."""
    return Client()


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
def test_ready_reports_every_check_ok_without_an_api_key(client):
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
