"""Clients that submit the same request at the same moment get one job, run once."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.chaos.harness import settle
from tests.chaos.jobs import job_body

# Each scenario is bounded: a stack's start, its fault and settling, and its stop.
pytestmark = pytest.mark.timeout(180)

COPIES = 10


def test_concurrent_identical_submissions(make_stack):
    stack, clients = make_stack()
    bodies = [job_body(f"same-{n}") for n in range(5)]
    started = time.time()

    # Every copy of every request at once: 50 requests racing for 5 client_request_ids.
    with ThreadPoolExecutor(max_workers=25) as pool:
        list(pool.map(clients.submit, [body for body in bodies for _ in range(COPIES)]))
    books = settle(stack, clients, since=started)

    first_answers = sorted(
        s.statuses[-1] for s in clients.submissions if s.statuses and s.statuses[-1] in (200, 202)
    )
    books.extra["requests"] = len(clients.submissions)
    assert not books.problems, books.line() + "\n" + stack.describe_logs()
    assert first_answers == [200] * (len(bodies) * (COPIES - 1)) + [202] * len(bodies)
    assert books.deliveries == len(bodies)
