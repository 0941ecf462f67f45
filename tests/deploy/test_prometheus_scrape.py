"""A real Prometheus (Debian's package) scrapes the running app while a worker processes jobs,
and reads back through its query API what the runbook promises."""

import json
import urllib.parse
import uuid

import pytest

from orchestrator.models import Job
from tests.helpers import http, wait_for_job
from tests.processes import ROOT, Process, free_port, http_ok, start_web, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
JOBS = 3


@pytest.fixture
def web(transactional_db):
    process, base_url = start_web()
    yield base_url
    process.stop()


@pytest.fixture
def prometheus(tmp_path, web):
    port = free_port()
    config = tmp_path / "prometheus.yml"
    target = urllib.parse.urlsplit(web).netloc
    config.write_text(
        f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{ALERTS}"]
scrape_configs:
  - job_name: ai-orchestrator
    static_configs: [{{targets: ["{target}"]}}]
"""
    )
    process = Process(
        "prometheus",
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        {"PATH": "/usr/bin:/bin"},
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: http_ok(f"{base_url}/-/ready"), timeout=30, message=process.log()[-2000:]
        )
        yield base_url
    finally:
        process.stop()


def query(prometheus: str, expression: str) -> float | None:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    status, _, text = http(url)
    assert status == 200, text
    result = json.loads(text)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_reads_the_runbook_series(prometheus, web, api_key, worker):
    auth = {"Authorization": f"Bearer {api_key}"}
    for _ in range(JOBS):
        body = {"client_request_id": f"scrape-{uuid.uuid4().hex[:8]}", "prompt": "Hello"}
        status, _, text = http(f"{web}/ai/jobs", body=body, headers=auth)
        assert status == 202, text
        assert wait_for_job(json.loads(text)["id"]).status == Job.Status.SUCCEEDED

    def scraped_after_the_jobs() -> bool:
        # A job's outcome is the last series its worker writes (every 0.1 s).
        return query(prometheus, 'ai_jobs_finished_total{status="succeeded"}') == JOBS

    wait_until(scraped_after_the_jobs, timeout=20, interval=0.5, message="never scraped")
    assert query(prometheus, "ai_queue_enqueue_total") == JOBS
    assert query(prometheus, "ai_queue_dequeue_total") == JOBS
    assert query(prometheus, "ai_queue_depth_total") == 0
    assert query(prometheus, "ai_queue_workers") >= 1
    assert query(prometheus, 'sum(http_requests_total{path="/ai/jobs",method="POST"})') == JOBS
    assert query(prometheus, 'up{job="ai-orchestrator"}') == 1

    status, _, text = http(f"{prometheus}/api/v1/rules")
    rules = [
        rule["name"] for group in json.loads(text)["data"]["groups"] for rule in group["rules"]
    ]
    assert "AIJobProcessingStalled" in rules and len(rules) == 7
