"""Specification of the logs: one JSON object per line from web and worker alike, carrying the
request id, workspace, job id and task id; never a key or a message body; rotated files."""

import json
import subprocess
import sys
import uuid

import pytest
from django.test import Client

from orchestrator.models import Job
from tests.helpers import http, wait_for_job
from tests.processes import ROOT, process_env, start_web, start_worker, wait_until

PROMPT = "PROMPT-BODY-7f3a please plan my week"


def json_lines(path) -> list[dict]:
    """Every line of a log file, each of which must be a JSON object."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("req-abc.123", True), (None, False), ("bad id\nwith newline", False), ("x" * 200, False)],
)
def test_request_id_is_honoured_when_safe_and_generated_otherwise(sent, kept):
    headers = {"X-Request-ID": sent} if sent is not None else {}

    response = Client().get("/health", headers=headers)

    returned = response["X-Request-ID"]
    if kept:
        assert returned == sent
    else:
        assert returned != sent
        assert len(returned) == 32 and int(returned, 16) >= 0


@pytest.mark.django_db(transaction=True)
def test_web_and_worker_write_json_lines_with_their_context_and_no_secrets(
    tmp_path, api_key, simulator
):
    log_file = tmp_path / "app.log"
    web, base_url = start_web(LOG_FILE=str(log_file))
    worker = start_worker(simulator, LOG_FILE=str(log_file))
    try:
        auth = {"Authorization": f"Bearer {api_key}"}
        body = {"client_request_id": "log-1", "prompt": PROMPT}
        status, headers, text = http(
            f"{base_url}/ai/jobs", body=body, headers={**auth, "X-Request-ID": "req-submit-1"}
        )
        assert status == 202, text
        assert headers["X-Request-ID"] == "req-submit-1"
        job_id = json.loads(text)["id"]
        missing = uuid.uuid4()
        status, _, _ = http(
            f"{base_url}/ai/jobs/{missing}", headers={**auth, "X-Request-ID": "req-missing-1"}
        )
        assert status == 404
        assert wait_for_job(job_id).status == Job.Status.SUCCEEDED
        wait_until(lambda: f"job {job_id} succeeded" in log_file.read_text(), timeout=10)
    finally:
        worker.stop()
        web.stop()

    lines = json_lines(log_file)
    not_found = next(line for line in lines if str(missing) in line["message"])
    assert not_found["level"] == "WARNING"
    assert not_found["request_id"] == "req-missing-1"
    assert not_found["workspace"] == "ws-a"

    finished = next(line for line in lines if line["message"] == f"job {job_id} succeeded")
    assert finished["job_id"] == job_id
    assert finished["workspace"] == "ws-a"
    assert finished["request_id"] == "req-submit-1"  # carried from the submitting request
    assert finished["task_id"]
    assert {"timestamp", "level", "logger", "message"} <= finished.keys()

    everything = log_file.read_text()
    assert api_key not in everything
    assert api_key.split("_", 2)[2] not in everything  # not even the secret part (may hold _)
    assert "PROMPT-BODY-7f3a" not in everything
    assert "PROMPT-BODY-7f3a" not in worker.log() + web.log()


def test_log_file_rotates_and_errors_can_be_grepped(tmp_path):
    log_file = tmp_path / "logs" / "app.log"
    script = (
        "import django, logging; django.setup(); log = logging.getLogger('t'); "
        "[log.info('filler %s', 'x' * 200) for _ in range(30)]; log.error('boom happened')"
    )
    env = process_env(LOG_FILE=str(log_file), LOG_FILE_MAX_BYTES="2048", LOG_FILE_BACKUPS="2")
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)

    assert sorted(p.name for p in log_file.parent.glob("app.log*")) == [
        "app.log",
        "app.log.1",
        "app.log.2",
    ]
    assert log_file.stat().st_size <= 2048
    # The runbook's `tail -f logs/app.log | grep ERROR`.
    grep = subprocess.run(["grep", "ERROR", str(log_file)], capture_output=True, text=True)
    assert grep.returncode == 0
    (line,) = grep.stdout.splitlines()
    assert json.loads(line)["message"] == "boom happened"
