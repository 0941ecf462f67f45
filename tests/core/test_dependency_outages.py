"""Specification of the API during a store outage: real gunicorn, a PostgreSQL of the test's
own that is stopped or killed, a Redis that is stopped. Requests answer a JSON 503 with
Retry-After within about a second (never a 500, never an HTML page, whatever DEBUG is),
/health answers at once and /ready names the store that is down."""

import json
import threading
import time

import pytest

from tests.helpers import http
from tests.processes import RedisServer, free_port, start_web, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

FAST = 1.5  # seconds: "within about a second", with room for a loaded machine


def timed(url: str, **kwargs) -> tuple[float, int, dict, dict | str]:
    """(seconds, status, headers, body as JSON when it is JSON)."""
    started = time.monotonic()
    status, headers, text = http(url, timeout=30, **kwargs)
    elapsed = time.monotonic() - started
    try:
        body: dict | str = json.loads(text)
    except ValueError:
        body = text
    return elapsed, status, headers, body


def submit(base_url: str, api_key: str, name: str) -> tuple[float, int, dict, dict | str]:
    return timed(
        f"{base_url}/ai/jobs",
        body={"client_request_id": name, "prompt": "Hello"},
        headers={"Authorization": f"Bearer {api_key}"},
    )


def assert_service_unavailable(answer: tuple, web) -> None:
    elapsed, status, headers, body = answer
    assert status == 503, (status, body, web.log()[-3000:])
    assert headers["Content-Type"] == "application/json"
    assert body["error"]["code"] == "service_unavailable"
    assert body["error"]["status"] == 503
    assert int(headers["Retry-After"]) > 0
    assert elapsed < FAST, elapsed


@pytest.mark.parametrize(
    ("outage", "debug"), [("stop", "false"), ("kill", "false"), ("stop", "true")]
)
def test_api_answers_json_503_at_once_while_postgres_is_down(postgres, outage, debug):
    web, base_url = start_web(DATABASE_URL=postgres.url, DEBUG=debug)
    name = f"{outage}-{debug}"
    try:
        _, status, _, job = submit(base_url, postgres.api_key, f"{name}-before")
        assert status == 202, job
        key_headers = {"Authorization": f"Bearer {postgres.api_key}"}

        getattr(postgres.server, outage)()
        # Each request again, not once: a pooled connection that died with the server and a
        # new one refused both answer 503.
        for n in range(3):
            assert_service_unavailable(submit(base_url, postgres.api_key, f"{name}-{n}"), web)
            assert_service_unavailable(
                timed(f"{base_url}/ai/jobs/{job['id']}", headers=key_headers), web
            )
        elapsed, status, _, body = timed(f"{base_url}/health")
        assert (status, body) == (200, {"alive": True})
        assert elapsed < 0.5, elapsed
        elapsed, status, _, body = timed(f"{base_url}/ready")
        assert status == 503, body
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["database"]["error"]
        assert body["checks"]["migrations"]["ok"] is False
        assert body["checks"]["redis"]["ok"] is True
        assert elapsed < FAST, elapsed
        assert "Traceback" not in web.log()  # an outage is logged in one line, not as a bug

        # Back by itself, within the pool's reconnection backoff (psycopg_pool: at most 10 s
        # between attempts); until then, more 503s.
        postgres.server.start()
        answers: list[tuple] = []

        def recovered() -> bool:
            answers.append(submit(base_url, postgres.api_key, f"{name}-after"))
            return answers[-1][1] == 202

        wait_until(recovered, timeout=20, interval=0.5)
        assert {answer[1] for answer in answers[:-1]} <= {503}, answers
        stored = postgres.execute(
            "SELECT client_request_id FROM orchestrator_job WHERE client_request_id LIKE %s",
            f"{name}-%",
        )
        assert sorted(row[0] for row in stored) == [f"{name}-after", f"{name}-before"]
    finally:
        web.stop()


def test_health_answers_while_requests_wait_on_a_dead_database(postgres):
    """Sync workers: /health queues behind requests that wait for PostgreSQL; each of those
    waits at most WEB_DB_POOL_TIMEOUT_SECONDS, so /health still answers within a few."""
    web, base_url = start_web(DATABASE_URL=postgres.url)
    try:
        postgres.server.stop()
        stop = threading.Event()

        def flood(n: int) -> None:
            while not stop.is_set():
                submit(base_url, postgres.api_key, f"flood-{n}-{time.monotonic()}")

        # Two clients per gunicorn worker, never idle.
        clients = [threading.Thread(target=flood, args=(n,)) for n in range(4)]
        for client in clients:
            client.start()
        latencies = []
        try:
            time.sleep(0.5)
            for _ in range(8):
                elapsed, status, _, _ = timed(f"{base_url}/health")
                assert status == 200
                latencies.append(elapsed)
        finally:
            stop.set()
            for client in clients:
                client.join()
        print(f"/health under a flood of DB-bound requests: max {max(latencies):.2f}s")
        assert max(latencies) < 3.0, latencies
    finally:
        web.stop()


def test_api_answers_at_once_while_redis_is_down(api_key):
    """Jobs live in PostgreSQL: with Redis stopped the API still accepts them (the sweeper
    publishes them later) and reads them, at once; /ready names Redis."""
    redis_server = RedisServer(free_port())
    redis_server.stop()
    web, base_url = start_web(REDIS_URL=redis_server.url)
    try:
        elapsed, status, _, job = submit(base_url, api_key, "redis-down")
        assert status == 202, (job, web.log()[-3000:])
        assert elapsed < FAST, elapsed
        elapsed, status, _, body = timed(
            f"{base_url}/ai/jobs/{job['id']}", headers={"Authorization": f"Bearer {api_key}"}
        )
        assert status == 200, body
        assert elapsed < FAST, elapsed
        elapsed, status, _, body = timed(f"{base_url}/health")
        assert status == 200 and elapsed < 0.5
        elapsed, status, _, body = timed(f"{base_url}/ready")
        assert status == 503, body
        assert body["checks"]["redis"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["queue"]["error"] == "redis is unavailable"
        assert elapsed < FAST, elapsed
    finally:
        web.stop()
