"""PostgreSQL killed under load, and a web process that dies between its commit and its publish:
every job a client was told about runs, once."""

import signal
import subprocess
import sys
import time

import pytest

from tests.chaos.harness import settle
from tests.chaos.jobs import job_body
from tests.processes import ROOT, process_env

# Each scenario is bounded: a stack's start, its fault and settling, and its stop.
pytestmark = pytest.mark.timeout(180)


def test_postgres_sigkill_under_load_and_restart(make_stack):
    stack, clients = make_stack()
    clients.submit_paced((job_body(f"pg-{n}", sleep_ms=200) for n in range(36)), interval=0.3)
    time.sleep(2.5)

    stack.pg.kill()
    time.sleep(4)
    stack.pg.start()
    books = settle(stack, clients, since=time.time(), timeout=60)

    assert not books.problems, books.line() + "\n" + stack.describe_logs()


def test_crash_between_commit_and_publish(make_stack):
    stack, clients = make_stack()
    request_ids = [f"commit-{n}" for n in range(20)]

    crash = subprocess.run(
        [sys.executable, "-m", "tests.chaos.crash_after_commit", stack.api_key, *request_ids],
        cwd=ROOT,
        env=process_env(**stack.env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    crashed_at = time.time()
    assert crash.returncode == -signal.SIGKILL, crash.stderr[-3000:]
    assert set(stack.jobs()) == set(request_ids)  # committed, every one

    # The clients never got an answer: they send the same requests again.
    clients.submit_all(job_body(crid) for crid in request_ids)
    books = settle(stack, clients, since=crashed_at)

    assert not books.problems, books.line() + "\n" + stack.describe_logs()
    assert {s.statuses[-1] for s in clients.submissions} == {200}  # replays of the stored jobs
    # Never published by the web process: the sweeper sent each one.
    jobs = stack.jobs().values()
    assert all(job["enqueued_at"] > job["created_at"] for job in jobs)
