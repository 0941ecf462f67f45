"""Specification of /metrics: the runbook's names with values that add up over every web process
and worker, route patterns as path labels, and an optional bearer token."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone

from core import metrics, workers
from core.redis_client import get_redis
from orchestrator import services
from orchestrator.models import Job
from tests.factories import make_job
from tests.helpers import http, metric, queue_length, scrape, submit, wait_for_job
from tests.processes import start_web, wait_until

# /metrics reads the approvals waiting from PostgreSQL at every scrape.
pytestmark = pytest.mark.django_db

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


# --- In-process ---------------------------------------------------------------------------------


def test_runbook_series_exist_from_the_start():
    text = scrape()
    for name in (
        "ai_queue_depth_total",
        "ai_queue_enqueue_total",
        "ai_queue_dequeue_total",
        "ai_queue_workers",
        "ai_sweeper_republished_total",
    ):
        assert metric(text, name) == 0, name
    assert "# TYPE http_requests_total counter" in text
    assert "# TYPE http_request_duration_seconds histogram" in text


def test_shared_counters_and_histograms_are_read_from_redis():
    metrics.count("ai_jobs_finished", status="succeeded")
    metrics.count("ai_jobs_finished", 2, status="failed")
    metrics.count("ai_actions", action="task.create", status="executed", reason="")
    metrics.observe("ai_job_duration_seconds", 0.3)
    metrics.observe("ai_job_duration_seconds", 400)

    text = scrape()

    assert metric(text, "ai_jobs_finished_total", status="succeeded") == 1
    assert metric(text, "ai_jobs_finished_total", status="failed") == 2
    assert metric(text, "ai_actions_total", action="task.create", status="executed") == 1
    assert metric(text, "ai_job_duration_seconds_bucket", le="0.25") == 0
    assert metric(text, "ai_job_duration_seconds_bucket", le="0.5") == 1
    assert metric(text, "ai_job_duration_seconds_bucket", le="300.0") == 1
    assert metric(text, "ai_job_duration_seconds_bucket", le="+Inf") == 2
    assert metric(text, "ai_job_duration_seconds_count") == 2
    assert metric(text, "ai_job_duration_seconds_sum") == pytest.approx(400.3)


def test_a_worker_sums_what_it_records_and_writes_it_at_each_interval(monkeypatch):
    monkeypatch.setattr(metrics, "_coalescer", None)  # this process is no worker after the test
    metrics.coalesce_writes(0.5)
    for _ in range(3):
        metrics.count("ai_queue_dequeue")
    metrics.observe("ai_model_request_duration_seconds", 0.4)

    assert metric(scrape(), "ai_queue_dequeue_total") == 0  # not before the interval

    wait_until(lambda: metric(scrape(), "ai_queue_dequeue_total") == 3, timeout=5)
    text = scrape()
    assert metric(text, "ai_model_request_duration_seconds_count") == 1
    assert metric(text, "ai_model_request_duration_seconds_sum") == pytest.approx(0.4)


def test_undeclared_series_and_labels_are_refused():
    with pytest.raises(KeyError):
        metrics.count("ai_made_up")
    with pytest.raises(ValueError, match="labels"):
        metrics.count("ai_jobs_finished", workspace="ws-a", status="failed")
    assert get_redis().exists("ai:metrics") == 0


def test_queue_depth_and_live_workers_are_read_at_scrape():
    get_redis().rpush("ai:queue:pending", "one", "two")
    workers.record_heartbeat("a@host")
    workers.record_heartbeat("b@host", now=time.time() - workers.HEARTBEAT_TIMEOUT_SECONDS - 1)

    text = scrape()

    assert metric(text, "ai_queue_depth_total") == 2
    assert metric(text, "ai_queue_workers") == 1


@pytest.mark.django_db
def test_http_series_use_the_route_pattern_and_status(api_client):
    before = scrape()
    for _ in range(2):
        assert api_client.get(f"/ai/jobs/{uuid.uuid4()}").status_code == 404
    assert Client().get("/no/such/path").status_code == 404

    text = scrape()

    def delta(name, **labels):
        return (metric(text, name, **labels) or 0) - (metric(before, name, **labels) or 0)

    detail = {"path": "/ai/jobs/<str:job_id>", "method": "GET"}
    assert delta("http_requests_total", status="404", **detail) == 2
    assert delta("http_request_duration_seconds_count", **detail) == 2
    assert delta("http_requests_total", path="<unmatched>", status="404") == 1
    assert "/ai/jobs/0" not in text  # no raw path ever becomes a label


@override_settings(METRICS_TOKEN="metrics-secret")
def test_metrics_token_is_required_when_set():
    anonymous = Client().get("/metrics")
    wrong = Client().get("/metrics", headers={"Authorization": "Bearer nope"})

    for response in (anonymous, wrong):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
        assert b"ai_queue" not in response.content
    assert "ai_queue_workers" in scrape(Authorization="Bearer metrics-secret")


def test_metrics_answer_without_redis_and_say_so(redis_db):
    get_redis.cache_clear()
    try:
        with override_settings(REDIS_URL=CLOSED_PORT_REDIS):
            metrics.count("ai_queue_enqueue")  # logged, not raised
            text = scrape()
    finally:
        get_redis.cache_clear()

    assert metric(text, "ai_metrics_store_up") == 0
    assert metric(text, "ai_queue_depth_total") is None
    assert "# TYPE http_requests_total counter" in text


def worker_totals(*, finished: int) -> str:
    """The exposition once the workers' writes (every 0.1 s) hold `finished` job outcomes, the
    last series a job records."""

    def written() -> bool:
        text = scrape()
        return (
            sum(
                metric(text, "ai_jobs_finished_total", status=status) or 0
                for status in Job.FINAL_STATUSES
            )
            >= finished
        )

    wait_until(written, timeout=10)
    return scrape()


# --- Across processes ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_counters_add_up_over_web_processes_and_a_worker(api_key, worker, simulator):
    web, base_url = start_web()
    try:
        auth = {"Authorization": f"Bearer {api_key}"}
        prompts = ["Hello"] * 5 + ['CALL task.create {"title": "from metrics"}']

        def post(prompt):
            body = {"client_request_id": f"m-{uuid.uuid4().hex[:10]}", "prompt": prompt}
            return http(f"{base_url}/ai/jobs", body=body, headers=auth)

        # Concurrent requests spread over both gunicorn processes.
        with ThreadPoolExecutor(max_workers=6) as pool:
            responses = list(pool.map(post, prompts))
        assert [status for status, _, _ in responses] == [202] * 6, responses
        for _, _, text in responses:
            job = wait_for_job(json.loads(text)["id"])
            assert job.status == Job.Status.SUCCEEDED, (job.error_code, worker.log()[-2000:])
        assert queue_length() == 0
        worker_totals(finished=6)

        # Each scrape may land on either web process; every one must see the totals.
        for _ in range(4):
            status, _, text = http(f"{base_url}/metrics")
            assert status == 200
            assert metric(text, "ai_queue_enqueue_total") == 6
            assert metric(text, "ai_queue_dequeue_total") == 6
            assert metric(text, "ai_queue_depth_total") == 0
            assert metric(text, "ai_queue_workers") >= 1
            assert metric(text, "ai_jobs_finished_total", status="succeeded") == 6
            assert metric(text, "ai_workspace_jobs_finished_total") is None  # opt-in only
            assert metric(text, "ai_job_queue_wait_seconds_count") == 6
            assert metric(text, "ai_model_requests_total", outcome="ok") == 7  # + the tool round
            assert metric(text, "ai_model_tokens_total", kind="prompt") > 0
            assert metric(text, "ai_actions_total", action="task.create", status="executed") == 1
            post_jobs = {"path": "/ai/jobs", "method": "POST"}
            assert metric(text, "http_requests_total", status="202", **post_jobs) == 6
            assert metric(text, "http_request_duration_seconds_count", **post_jobs) == 6
    finally:
        web.stop()


@pytest.mark.django_db(transaction=True)
def test_enqueue_counts_only_published_messages(api_client):
    response = submit(api_client, client_request_id="once", prompt="Hello")
    assert response.status_code == 202
    replay = submit(api_client, client_request_id="once", prompt="Hello")
    assert replay.status_code == 200

    text = scrape()

    assert metric(text, "ai_queue_enqueue_total") == 1
    assert metric(text, "ai_queue_depth_total") == 1
    assert metric(text, "ai_queue_dequeue_total") == 0


@pytest.mark.django_db(transaction=True)
def test_retries_failures_and_model_outcomes_are_counted(api_client, worker, simulator):
    retried = submit(api_client, client_request_id="retry-429", prompt="FAIL 429 1")
    refused = submit(api_client, client_request_id="fail-400", prompt="FAIL 400 1")
    assert wait_for_job(retried.json()["id"]).status == Job.Status.SUCCEEDED
    assert wait_for_job(refused.json()["id"]).status == Job.Status.FAILED

    text = worker_totals(finished=2)

    # Celery's retry is a new message: it counts on both sides, so enqueue matches dequeue.
    assert metric(text, "ai_queue_enqueue_total") == 3
    assert metric(text, "ai_queue_dequeue_total") == 3
    assert metric(text, "ai_model_requests_total", outcome="429") == 1
    assert metric(text, "ai_model_requests_total", outcome="4xx") == 1
    assert metric(text, "ai_model_requests_total", outcome="ok") == 1
    assert metric(text, "ai_model_request_duration_seconds_count") == 3
    assert metric(text, "ai_jobs_finished_total", status="succeeded") == 1
    assert metric(text, "ai_jobs_finished_total", status="failed") == 1


@pytest.mark.django_db(transaction=True)
def test_sweeper_republishes_are_counted(workspace):
    stale = timezone.now() - timedelta(seconds=settings.JOB_REQUEUE_AFTER_SECONDS + 60)
    make_job(workspace, enqueued_at=stale)
    make_job(workspace)  # fresh: left alone

    assert services.requeue_stale_jobs() == 1

    text = scrape()
    assert metric(text, "ai_sweeper_republished_total") == 1
    assert metric(text, "ai_queue_enqueue_total") == 1
    assert metric(text, "ai_queue_depth_total") == 1


@pytest.mark.django_db(transaction=True)
def test_a_message_redelivered_after_a_worker_died_is_counted(api_client, start_worker_with):
    fast = {
        "AI_REQUEST_TIMEOUT_SECONDS": "2",
        "AI_MAX_TOOL_ROUNDS": "0",
        "JOB_LEASE_SECONDS": "3",
        "BROKER_VISIBILITY_TIMEOUT_SECONDS": "4",
    }
    first = start_worker_with(**fast)
    response = submit(api_client, client_request_id="killed", prompt="SLEEP 1500")
    wait_for_job(response.json()["id"], statuses=[Job.Status.RUNNING])
    # Killed once its take is written (within 0.1 s; a kill before loses it, as documented).
    wait_until(lambda: metric(scrape(), "ai_queue_dequeue_total") == 1, timeout=5)
    first.kill()  # the message stays unacknowledged
    # A starting worker restores messages unacknowledged for longer than the visibility timeout.
    time.sleep(5)
    second = start_worker_with(**fast)
    wait_until(
        lambda: metric(scrape(), "ai_job_redeliveries_total") == 1,
        timeout=30,
        message=f"no redelivery counted:\n{second.log()[-2000:]}",
    )
    assert metric(scrape(), "ai_queue_dequeue_total") == 2
    assert metric(scrape(), "ai_queue_enqueue_total") == 1


@pytest.mark.django_db(transaction=True)
def test_jobs_per_workspace_only_when_opted_in(api_client, start_worker_with):
    start_worker_with(METRICS_WORKSPACE_LABEL="true")
    response = submit(api_client, client_request_id="per-ws", prompt="Hello")
    assert wait_for_job(response.json()["id"]).status == Job.Status.SUCCEEDED

    text = worker_totals(finished=1)

    assert metric(text, "ai_workspace_jobs_finished_total", workspace="ws-a") == 1
    assert metric(text, "ai_jobs_finished_total", status="succeeded") == 1
