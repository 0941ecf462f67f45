"""When the client retries, and how long it waits: its plans fed with the answers a server or a
network gives (httpx responses and exceptions), the waits read from the steps they yield."""

import httpx
import pytest

from orchestrator_client import (
    ApiConnectionError,
    InternalServerError,
    RateLimitedError,
    RetryPolicy,
    ServiceUnavailableError,
)
from orchestrator_client._core import Operations, Request, Sleep
from orchestrator_client.models import Page

PAGE = {"results": [], "next_cursor": None}
ACTION = {
    "id": 7,
    "job_id": "5f0e3c4a-8d7e-4a43-9d6c-4f6f3c1a9b10",
    "call_key": "1.0",
    "action": "task.create",
    "arguments": {"title": "Pay"},
    "arguments_hash": "a" * 64,
    "status": "executing",
    "reason": "",
    "result": None,
    "expires_at": None,
    "decided_by": "api-key:abc",
    "decided_at": "2026-01-02T03:04:05.123456Z",
    "created_at": "2026-01-02T03:04:00Z",
    "finished_at": None,
}


def operations(**policy) -> Operations:
    return Operations(
        "http://orchestrator.test", "aio_key", timeout=5, retry_policy=RetryPolicy(**policy)
    )


def error(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"error": {"status": status, "code": code, "message": code, "fields": {}}}
    return httpx.Response(status, json=body, headers=headers)


def drive(plan, outcomes, steps: list | None = None):
    """Answer each Request step with the next outcome (an exception instance is a transport
    failure) and each Sleep at once; return the plan's result. Steps go to `steps`."""
    outcomes = list(outcomes)
    steps = [] if steps is None else steps
    outcome = None
    while True:
        try:
            step = plan.send(outcome)
        except StopIteration as done:
            return done.value
        steps.append(step)
        outcome = outcomes.pop(0) if isinstance(step, Request) else None


def sleeps(steps) -> list[float]:
    return [step.seconds for step in steps if isinstance(step, Sleep)]


def test_a_429_is_retried_after_its_retry_after_with_the_same_request():
    steps = []
    page = drive(
        operations().list_jobs({}),
        [error(429, "rate_limited", **{"Retry-After": "2"}), httpx.Response(200, json=PAGE)],
        steps,
    )

    assert isinstance(page, Page) and page.items == []
    first, wait, second = steps
    assert wait == Sleep(2.0)
    assert first is second  # same request id, same body


def test_a_retry_after_longer_than_the_policy_waits_is_raised_at_once():
    steps = []
    plan = operations(max_retry_after=30).list_jobs({})
    with pytest.raises(RateLimitedError) as limited:
        drive(plan, [error(429, "rate_limited", **{"Retry-After": "31"})], steps)
    assert limited.value.retry_after == 31
    assert len(steps) == 1 and sleeps(steps) == []


def test_a_503_and_a_dropped_connection_are_retried_with_growing_jittered_backoff():
    outcomes = [
        httpx.Response(503, text="<html>Service Unavailable</html>"),  # a proxy's page
        httpx.ConnectError("refused"),
        httpx.ReadError("connection reset"),
        httpx.Response(200, json=PAGE),
    ]
    steps = []
    drive(operations(initial_delay=1, max_delay=8).list_jobs({}), outcomes, steps)

    first, second, third = sleeps(steps)
    assert 0.5 <= first <= 1 and 1 <= second <= 2 and 2 <= third <= 4


def test_backoff_is_capped_and_jitter_spreads_clients_apart():
    policy = RetryPolicy(initial_delay=0.5, max_delay=4)
    delays = [policy.backoff(10) for _ in range(200)]
    assert all(2 <= delay <= 4 for delay in delays)
    assert len({round(delay, 3) for delay in delays}) > 50


def test_after_max_retries_the_last_error_is_raised():
    steps = []
    with pytest.raises(ServiceUnavailableError):
        drive(
            operations(max_retries=2, initial_delay=0.01).get_job("j"),
            [error(503, "service_unavailable")] * 3,
            steps,
        )
    assert len(sleeps(steps)) == 2 and len(steps) == 5


@pytest.mark.parametrize(
    "outcome",
    [error(429, "rate_limited", **{"Retry-After": "1"}), error(503, "x"), httpx.ConnectError("x")],
)
@pytest.mark.parametrize("decide", ["approve", "reject"])
def test_approve_and_reject_are_never_retried(outcome, decide):
    ops = operations()
    plan = ops.approve(7, "a" * 64) if decide == "approve" else ops.reject(7)
    steps = []
    with pytest.raises((RateLimitedError, ServiceUnavailableError, ApiConnectionError)):
        drive(plan, [outcome], steps)
    assert len(steps) == 1


def test_approve_sends_the_arguments_hash_and_reads_the_action():
    steps = []
    action = drive(operations().approve(7, "a" * 64), [httpx.Response(200, json=ACTION)], steps)

    (step,) = steps
    assert (step.method, step.path, step.body) == (
        "POST",
        "/ai/actions/7/approve",
        {"arguments_hash": "a" * 64},
    )
    assert (action.id, action.status, action.decided_at.year) == (7, "executing", 2026)


def test_a_500_is_not_retried_even_for_a_read():
    with pytest.raises(InternalServerError):
        drive(operations().list_jobs({}), [error(500, "internal_error")])


def test_submit_reuses_its_client_request_id_on_every_attempt():
    plan = operations(initial_delay=0.01).submit(None, {"prompt": "Hi"})
    first = plan.send(None)
    assert isinstance(first, Request) and first.body["client_request_id"].startswith("req-")
    assert isinstance(plan.send(httpx.ReadError("lost answer")), Sleep)
    assert plan.send(None) is first


def test_the_request_carries_key_request_id_and_a_quoted_path():
    ops = operations()
    step = ops.get_job("a/b?c").send(None)
    args = ops.http_args(step)

    assert args["url"] == "http://orchestrator.test/ai/jobs/a%2Fb%3Fc"
    assert args["headers"]["Authorization"] == "Bearer aio_key"
    assert args["headers"]["X-Request-ID"] == step.request_id
