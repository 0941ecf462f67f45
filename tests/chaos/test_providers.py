"""Mail providers that drop the connection after accepting, answer too late, or answer 202
slowly: each e-mail is delivered once, and what may have been sent is never sent again."""

import time
from collections import Counter

import pytest

from tests.chaos.harness import settle
from tests.chaos.jobs import job_body
from tests.fakes.mail_providers import Fault

# Each scenario is bounded: a stack's start, its fault and settling, and its stop.
pytestmark = pytest.mark.timeout(180)

EACH = 8


def test_provider_drops_times_out_or_answers_slowly(make_stack, providers):
    stack, clients = make_stack()
    # Google: accepted then the connection dropped; accepted then no answer within the read
    # timeout (1.5 s). Graph: 202 after 1 s, within it.
    providers.inject("google", *[Fault(drop=True) for _ in range(EACH)])
    providers.inject("google", *[Fault(hang=3) for _ in range(EACH)])
    providers.inject("microsoft", *[Fault(hang=1) for _ in range(EACH)])
    started = time.time()
    clients.submit_all(
        [job_body(f"gmail-{n}") for n in range(2 * EACH)]
        + [job_body(f"graph-{n}", provider="microsoft") for n in range(EACH)]
    )
    books = settle(stack, clients, since=started)

    assert not books.problems, books.line() + "\n" + stack.describe_logs()
    outcomes = Counter(
        (crid.split("-")[0], status, reason) for crid, status, reason in stack.actions()
    )
    assert outcomes == {
        ("gmail", "unknown", "provider_outcome_unknown"): 2 * EACH,
        ("graph", "executed", ""): EACH,
    }
    assert books.deliveries == 3 * EACH
