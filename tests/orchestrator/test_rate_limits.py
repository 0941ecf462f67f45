"""Per-workspace rate limits: exact under concurrency, refused requests leave nothing."""

import http.client
import ipaddress
import json
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from core import redis_keys
from core.redis_client import get_redis
from orchestrator.models import Job
from tests import factories
from tests.helpers import queue_length, submit
from tests.processes import start_web

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def body(index: int | str) -> dict:
    return {"client_request_id": f"rl-{index}", "prompt": "Hello"}


def idempotency_keys(workspace) -> list[str]:
    return list(get_redis().scan_iter(redis_keys.idempotency_key(workspace.id, "*")))


@pytest.fixture
def limited(workspace):
    """The caller's workspace limited to 3 requests a minute."""
    workspace.rate_limit_per_minute = 3
    workspace.save()
    return workspace


def test_every_response_carries_the_rate_limit_headers(api_client, workspace, client_for):
    job = factories.make_job(workspace)
    read_only = client_for(factories.make_api_key(workspace, scopes=["jobs:read"]))
    responses = [
        submit(api_client, **body(1)),  # 202
        submit(api_client, **body(1)),  # 200 replay
        submit(api_client, client_request_id="bad id"),  # 400
        api_client.get(f"/ai/jobs/{job.id}"),  # 200
        api_client.get("/ai/jobs/00000000-0000-0000-0000-000000000000"),  # 404
        submit(read_only, **body(2)),  # 403, another key of the same workspace
        submit(api_client, **{**body(1), "prompt": "Other"}),  # 422
    ]

    assert [r.status_code for r in responses] == [202, 200, 400, 200, 404, 403, 422]
    for response in responses:
        assert all(name in response.headers for name in HEADERS), response.headers
    # Each request counts once, whichever way it ends.
    assert [int(r.headers["RateLimit-Remaining"]) for r in responses] == list(range(99, 92, -1))
    assert {r.headers["RateLimit-Limit"] for r in responses} == {"100"}
    assert 0 < int(responses[-1].headers["RateLimit-Reset"]) <= 60


def test_over_the_limit_is_429_with_retry_after_and_leaves_nothing(api_client, limited):
    accepted = [submit(api_client, **body(i)) for i in range(3)]
    assert [r.status_code for r in accepted] == [202, 202, 202]  # positive control

    refused = submit(api_client, **body("over"))

    assert refused.status_code == 429, refused.content
    error = refused.json()["error"]
    assert (error["status"], error["code"]) == (429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Limit"] == "3"
    assert Job.objects.count() == 3
    assert not Job.objects.filter(client_request_id="rl-over").exists()
    assert len(idempotency_keys(limited)) == 3
    assert queue_length() == 3


def test_reads_and_bad_requests_count_and_are_refused_over_the_limit(api_client, limited):
    job = factories.make_job(limited)
    statuses = [
        api_client.get(f"/ai/jobs/{job.id}").status_code,
        submit(api_client, client_request_id="bad id").status_code,
        submit(api_client, **body(1)).status_code,
        api_client.get(f"/ai/jobs/{job.id}").status_code,
        submit(api_client, client_request_id="bad id").status_code,
    ]

    assert statuses == [200, 400, 202, 429, 429]


def test_one_workspace_over_its_limit_does_not_limit_another(
    api_client, limited, client_for, other_workspace
):
    other = client_for(factories.make_api_key(other_workspace))
    for i in range(3):
        submit(api_client, **body(i))
    assert submit(api_client, **body("x")).status_code == 429

    response = submit(other, **body("x"))

    assert response.status_code == 202
    assert response.headers["RateLimit-Remaining"] == "99"


def test_workspace_limit_of_zero_is_unlimited_and_unset_follows_the_setting(
    api_client, workspace, client_for, other_workspace
):
    workspace.rate_limit_per_minute = 0
    workspace.save()
    other = client_for(factories.make_api_key(other_workspace))

    with override_settings(RATE_LIMIT_PER_MINUTE=2):
        ours = [submit(api_client, **body(i)) for i in range(4)]
        theirs = [submit(other, **body(i)) for i in range(3)]

    assert [r.status_code for r in ours] == [202, 202, 202, 202]
    assert "RateLimit-Limit" not in ours[-1].headers  # no budget to tell
    assert [r.status_code for r in theirs] == [202, 202, 429]
    assert theirs[0].headers["RateLimit-Limit"] == "2"


@override_settings(AUTH_FAILURES_PER_MINUTE=3)
def test_failed_authentications_are_limited_per_client_address(workspace, api_key):
    from rest_framework.test import APIClient

    def attempt(key: str, address: str):
        client = APIClient(REMOTE_ADDR=address)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client.get("/ai/jobs/00000000-0000-0000-0000-000000000000")

    wrong = api_key[:-4] + "AAAA"
    statuses = [attempt(wrong, "203.0.113.7").status_code for _ in range(4)]

    assert statuses == [401, 401, 401, 429]
    refused = attempt(wrong, "203.0.113.7")
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    # Another address still gets the plain 401, and the right key is not locked out.
    assert attempt(wrong, "203.0.113.8").status_code == 401
    assert attempt(api_key, "203.0.113.7").status_code == 404


@override_settings(
    AUTH_FAILURES_PER_MINUTE=3, TRUSTED_PROXIES=(ipaddress.ip_network("10.9.0.0/24"),)
)
def test_behind_a_trusted_proxy_wrong_keys_are_limited_per_client_not_per_proxy(workspace, api_key):
    from rest_framework.test import APIClient

    def attempt(key: str, forwarded_for: str):
        client = APIClient(REMOTE_ADDR="10.9.0.1", HTTP_X_FORWARDED_FOR=forwarded_for)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client.get("/ai/jobs/00000000-0000-0000-0000-000000000000")

    wrong = api_key[:-4] + "AAAA"
    # The guesser rotates the address it writes itself; the balancer appends the real one.
    statuses = [attempt(wrong, f"192.0.2.{n}, 203.0.113.7").status_code for n in range(4)]

    assert statuses == [401, 401, 401, 429]
    # Another client behind the same balancer is not limited by the guesser's failures.
    assert attempt(wrong, "203.0.113.8").status_code == 401


def test_limiter_fails_open_with_a_warning_and_a_metric_when_redis_is_down(
    api_client, limited, dead_redis, caplog
):
    before = REGISTRY.get_sample_value("ai_rate_limit_fail_open_total") or 0

    responses = [submit(api_client, **body(i)) for i in range(5)]

    assert [r.status_code for r in responses] == [202] * 5  # over the limit of 3: fail open
    assert "RateLimit-Remaining" not in responses[-1].headers  # unchecked: no budget claimed
    assert Job.objects.count() == 5
    after = REGISTRY.get_sample_value("ai_rate_limit_fail_open_total")
    assert after == before + 5
    assert "rate limiter unavailable" in caplog.text


# --- Under concurrency, against gunicorn ------------------------------------------------------


def post(base_url: str, key: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base_url}/ai/jobs",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_concurrent_flood_is_held_at_exactly_the_limit_without_touching_another_workspace(
    workspace, other_workspace
):
    key_a = factories.make_api_key(workspace)
    key_b = factories.make_api_key(other_workspace)
    web, base_url = start_web(RATE_LIMIT_PER_MINUTE="100")
    try:
        calls = [(key_a, f"a-{i}") for i in range(300)] + [(key_b, f"b-{i}") for i in range(50)]
        # Interleave B among A's flood so both run at the same time.
        calls.sort(key=lambda call: int(call[1].split("-")[1]) * (6 if call[0] == key_b else 1))
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(lambda c: (c[0], *post(base_url, c[0], body(c[1]))), calls))
    finally:
        web.stop()

    a_statuses = Counter(status for key, status, _ in results if key == key_a)
    b_statuses = Counter(status for key, status, _ in results if key == key_b)
    assert a_statuses == {202: 100, 429: 200}, (a_statuses, web.log()[-2000:])
    assert b_statuses == {202: 50}
    refused = [headers for key, status, headers in results if status == 429]
    assert all(int(headers["Retry-After"]) >= 1 for headers in refused)
    assert Job.objects.filter(workspace=workspace).count() == 100
    assert Job.objects.filter(workspace=other_workspace).count() == 50
    assert len(idempotency_keys(workspace)) == 100
    assert queue_length() == 150


def test_through_gunicorn_a_trusted_proxys_forwarded_for_names_the_limited_client(workspace):
    key = factories.make_api_key(workspace)
    wrong = key[:-4] + "AAAA"
    # The test client connects from 127.0.0.1: here it plays the balancer.
    web, base_url = start_web(workers=1, TRUSTED_PROXIES="127.0.0.1", AUTH_FAILURES_PER_MINUTE="3")

    def attempt(*forwarded_for: str) -> int:
        # Each value is its own header line, as HTTP allows; gunicorn joins them in order.
        connection = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=30)
        try:
            connection.putrequest("GET", "/ai/jobs/00000000-0000-0000-0000-000000000000")
            connection.putheader("Authorization", f"Bearer {wrong}")
            for value in forwarded_for:
                connection.putheader("X-Forwarded-For", value)
            connection.endheaders()
            return connection.getresponse().status
        finally:
            connection.close()

    try:
        # The guesser writes a new address each time; the balancer appends the one it saw.
        guesses = [attempt(f"192.0.2.{n}", "198.51.100.77") for n in range(3)]
        with_a_port = attempt("192.0.2.9", "198.51.100.77:40112")
        neighbour = attempt("198.51.100.78")
    finally:
        web.stop()

    assert guesses == [401, 401, 401], web.log()[-2000:]
    assert with_a_port == 429  # the same client, whatever its source port
    assert neighbour == 401  # behind the same balancer, but not the guesser
