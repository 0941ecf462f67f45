"""Specification of a worker when PostgreSQL goes away: a job interrupted by a database error
is handed back and runs again, never lost and never failed; a worker that cannot reach the
database backs off and resumes when it returns. Real worker and web on a cluster of the
test's own."""

import json
import time

import psycopg
import pytest

from tests.helpers import http
from tests.processes import start_web, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def submit(base_url: str, postgres, name: str, prompt: str) -> str:
    status, _, text = http(
        f"{base_url}/ai/jobs",
        body={"client_request_id": name, "prompt": prompt},
        headers={"Authorization": f"Bearer {postgres.api_key}"},
    )
    assert status == 202, text
    return json.loads(text)["id"]


def job_row(postgres, job_id: str) -> dict:
    status, attempts, error_code = postgres.execute(
        "SELECT status, attempts, error_code FROM orchestrator_job WHERE id = %s", job_id
    )[0]
    return {"status": status, "attempts": attempts, "error_code": error_code}


def wait_for_status(postgres, job_id: str, statuses: set[str], timeout: float) -> dict:
    wait_until(lambda: job_row(postgres, job_id)["status"] in statuses, timeout=timeout)
    return job_row(postgres, job_id)


def test_job_whose_connection_is_terminated_mid_job_is_handed_back_and_succeeds(
    postgres, start_worker_with, simulator
):
    web, base_url = start_web(DATABASE_URL=postgres.url)
    worker = start_worker_with(DATABASE_URL=postgres.url)
    try:
        job_id = submit(base_url, postgres, "terminated-1", "SLEEP 3000\nslow answer")
        wait_for_status(postgres, job_id, {"running"}, timeout=15)

        # The row is held, so the worker's UPDATE that stores the answer waits on it; then its
        # session is terminated, as a failover or an operator's pg_terminate_backend does.
        with psycopg.connect(postgres.url) as holder:
            holder.execute("SELECT id FROM orchestrator_job WHERE id = %s FOR UPDATE", [job_id])
            waiting = (
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'UPDATE%%orchestrator_job%%'"
            )
            wait_until(lambda: postgres.execute(waiting), timeout=15)
            for (pid,) in postgres.execute(waiting):
                postgres.execute("SELECT pg_terminate_backend(%s)", pid)
            holder.rollback()

        row = wait_for_status(postgres, job_id, {"succeeded", "failed", "cancelled"}, timeout=60)
        assert row["status"] == "succeeded", (row, worker.log()[-3000:])
        assert row["error_code"] == ""
        assert row["attempts"] == 2  # the interrupted run and the one after the hand-back
        assert "handed back after a database error" in worker.log()
        assert worker.popen.poll() is None
    finally:
        web.stop()


def test_postgres_restarting_under_a_running_job_costs_it_nothing(
    postgres, start_worker_with, simulator
):
    web, base_url = start_web(DATABASE_URL=postgres.url)
    worker = start_worker_with(DATABASE_URL=postgres.url)
    try:
        job_id = submit(base_url, postgres, "restart-1", "SLEEP 3000\nslow answer")
        wait_for_status(postgres, job_id, {"running"}, timeout=15)

        # While the model answers, PostgreSQL restarts: the connections parked in the worker's
        # pool die with it, and the pool's check replaces them when the answer is stored.
        postgres.server.stop()
        postgres.server.start()

        row = wait_for_status(postgres, job_id, {"succeeded", "failed", "cancelled"}, timeout=60)
        assert row["status"] == "succeeded", (row, worker.log()[-3000:])
        assert row["attempts"] == 1
        assert worker.popen.poll() is None
    finally:
        web.stop()


def test_worker_backs_off_while_postgres_is_down_and_runs_the_job_when_it_returns(
    postgres, start_worker_with, simulator
):
    web, base_url = start_web(DATABASE_URL=postgres.url)
    try:
        job_id = submit(base_url, postgres, "down-1", "waits for the database")
        postgres.server.stop()
        # The message is in Redis, the job row unreachable: every delivery fails to claim it.
        worker = start_worker_with(DATABASE_URL=postgres.url, DB_POOL_TIMEOUT_SECONDS="1")
        wait_until(lambda: "Retry in" in worker.log(), timeout=30)
        time.sleep(2)
        postgres.server.start()

        row = wait_for_status(postgres, job_id, {"succeeded", "failed", "cancelled"}, timeout=90)
        assert row["status"] == "succeeded", (row, worker.log()[-3000:])
        assert row["attempts"] == 1
        assert simulator.requests() == 1
        assert worker.popen.poll() is None
    finally:
        web.stop()
