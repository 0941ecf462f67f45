"""Workers die, crash on a poison job, or are replaced by a rolling deploy: no accepted job is
lost, none runs twice, no e-mail goes out twice."""

import signal
import time

import pytest

from tests.chaos.harness import settle, wait_for
from tests.chaos.jobs import job_body
from tests.fakes.mail_providers import Fault

# Each scenario is bounded: a stack's start, its fault and settling, and its stop.
pytestmark = pytest.mark.timeout(180)

JOBS = 30


def sends_in_flight(providers, answered_after: float) -> int:
    """Sends the fake accepted and has not answered yet (it answers `answered_after` late)."""
    now = time.monotonic()
    return sum(
        1
        for _, at, status in providers.send_attempts
        if status == 200 and at > now - answered_after
    )


def test_worker_sigkill_with_sends_in_flight(make_stack, providers):
    stack, clients = make_stack()
    # Each send is accepted at once and answered 0.7 s later: the kill finds some in flight.
    providers.inject("google", *[Fault(hang=0.7) for _ in range(JOBS)])
    clients.submit_all(job_body(f"kill-{n}") for n in range(JOBS))
    wait_for(lambda: sends_in_flight(providers, 0.7) >= 3, timeout=20, message="no sends in flight")

    stack.workers[0].kill()  # the supervisor starts it again, as make run or systemd would
    killed_at = time.time()
    books = settle(stack, clients, since=killed_at)

    assert not books.problems, books.line() + "\n" + stack.describe_logs()
    assert books.expected_exits == 1
    # What was in flight is settled `unknown` (never sent again); the rest executed.
    assert books.unknown_actions >= 1
    assert books.deliveries <= JOBS


def test_poison_job_fails_after_bounded_deliveries_and_the_worker_comes_back(make_stack):
    # tests/chaos/poison.py makes the worker that claims the poison job die a second later.
    # Two deliveries at most (JOB_MAX_ATTEMPTS): each costs a worker's restart.
    stack, clients = make_stack(worker_include=["tests.chaos.poison"], JOB_MAX_ATTEMPTS="2")
    started = time.time()
    clients.submit_all(job_body(f"before-{n}", sleep_ms=50) for n in range(10))
    clients.submit(job_body("poison", sleep_ms=1500, send=False, metadata={"chaos": "poison"}))
    wait_for(
        lambda: stack.jobs()["poison"]["status"] == "failed",
        timeout=90,
        message="the poison job never ended",
    )
    worker = stack.workers[0]
    wait_for(lambda: worker.running and "ready." in worker.process.log(), timeout=30,
             message="the worker did not come back")  # fmt: skip
    clients.submit_all(job_body(f"after-{n}", sleep_ms=50) for n in range(10))
    books = settle(
        stack, clients, since=started, expect_failed={"poison"}, unexpected_exits_allowed=True
    )

    assert not books.problems, books.line() + "\n" + stack.describe_logs()
    poison = stack.jobs()["poison"]
    assert (poison["error_code"], poison["attempts"]) == ("attempts_exhausted", 2)
    # Each delivery killed the worker once, and no more deliveries were made.
    assert worker.unexpected_exits == [-signal.SIGKILL] * 2
    assert worker.running


def test_sigterm_during_long_jobs_rolling_deploy(make_stack):
    stack, clients = make_stack()
    old = stack.workers[0]
    clients.submit_all(job_body(f"long-{n}", sleep_ms=1200) for n in range(16))
    wait_for(
        lambda: sum(1 for job in stack.jobs().values() if job["status"] == "running") >= 6,
        timeout=20,
        message="the long jobs never ran",
    )

    stack.add_worker()  # the new release first, then the old one is told to stop
    stopped_at = time.time()
    exit_code = old.retire(signal.SIGTERM, timeout=30)
    books = settle(stack, clients, since=stopped_at)

    assert not books.problems, books.line() + "\n" + stack.describe_logs()
    assert exit_code == 0, old.process.log()[-3000:]
    # Warm shutdown: the old worker finished what it held; nothing was interrupted.
    assert {job["attempts"] for job in stack.jobs().values()} == {1}
    assert books.unknown_actions == 0
