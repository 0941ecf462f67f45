"""docs/runbook.md works as written: its diagnostic commands run, verbatim, against a running
stack (gunicorn, a Celery worker, PostgreSQL, Redis). Only the address changes: the runbook's
http://localhost:8000 is the test server's free port."""

import json
import os
import re
import subprocess

import pytest

from orchestrator.models import Job
from tests import factories, processes
from tests.helpers import http, wait_for_job
from tests.processes import BIN, ROOT, start_web

pytestmark = pytest.mark.django_db(transaction=True)

RUNBOOK = ROOT / "docs" / "runbook.md"
RUNBOOK_URL = "http://localhost:8000"
DIAGNOSTICS = [
    "redis-cli -u $REDIS_URL ping",
    "redis-cli -u $REDIS_URL CONFIG GET maxmemory-policy",
    "python manage.py migrate",
    "curl -s http://localhost:8000/ready",
    "redis-cli -u $REDIS_URL LLEN ai:queue:pending",
    "curl -s http://localhost:8000/metrics | grep ai_queue_workers",
    "redis-cli -u $REDIS_URL TTL ai:idempotency:ws-123:req-456",
    "redis-cli -u $REDIS_URL INFO memory",
    "redis-cli -u $REDIS_URL LASTSAVE",
    'pg_dump -t action_audit "$DATABASE_URL" > audit_backup.sql',
]


def runbook_commands() -> dict[str, str]:
    """Each command line of the runbook's bash blocks, with its `# Expected:` line if any."""
    commands: dict[str, str] = {}
    for block in re.findall(r"```bash\n(.*?)```", RUNBOOK.read_text(), flags=re.DOTALL):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        for index, line in enumerate(lines):
            if line.startswith("#"):
                continue
            following = lines[index + 1] if index + 1 < len(lines) else ""
            expected = following.removeprefix("# Expected:").strip()
            commands[line] = expected if following.startswith("# Expected:") else ""
    return commands


def test_the_diagnostic_commands_are_in_the_runbook_verbatim():
    commands = runbook_commands()
    missing = [command for command in DIAGNOSTICS if command not in commands]
    assert not missing
    assert not [command for command in commands if "alembic" in command]


def test_the_runbook_diagnostics_work_against_a_running_stack(
    tmp_path, worker, simulator, redis_db
):
    from django.conf import settings

    workspace = factories.make_workspace("ws-123")
    key = factories.make_api_key(workspace)
    web, base_url = start_web()
    try:
        body = {"client_request_id": "req-456", "prompt": 'CALL task.create {"title": "runbook"}'}
        status, _, text = http(
            f"{base_url}/ai/jobs", body=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert status == 202, text
        job = wait_for_job(json.loads(text)["id"])
        assert job.status == Job.Status.SUCCEEDED, job.error_message

        env = {
            **os.environ,
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "REDIS_URL": settings.REDIS_URL,
            "DATABASE_URL": processes.test_database_url(),
            "ENV_FILE": "",
            "LOG_FILE": "",
        }
        expectations = runbook_commands()
        outputs = {}
        for command in DIAGNOSTICS:
            result = subprocess.run(
                ["bash", "-c", command.replace(RUNBOOK_URL, base_url)],
                cwd=ROOT if command.startswith("python manage.py") else tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, (command, result.stdout, result.stderr)
            expected = expectations[command].split("{...}")[0]
            assert expected in result.stdout, (command, result.stdout)
            outputs[command] = result.stdout.strip()
    finally:
        web.stop()

    assert outputs["redis-cli -u $REDIS_URL ping"] == "PONG"
    assert "noeviction" in outputs["redis-cli -u $REDIS_URL CONFIG GET maxmemory-policy"]
    assert "No migrations to apply" in outputs["python manage.py migrate"]
    assert json.loads(outputs["curl -s http://localhost:8000/ready"])["ready"] is True
    assert outputs["redis-cli -u $REDIS_URL LLEN ai:queue:pending"] == "0"
    workers_line = outputs["curl -s http://localhost:8000/metrics | grep ai_queue_workers"]
    assert "ai_queue_workers 1.0" in workers_line.splitlines()
    ttl = int(outputs["redis-cli -u $REDIS_URL TTL ai:idempotency:ws-123:req-456"])
    assert 0 < ttl <= settings.IDEMPOTENCY_TTL_SECONDS
    assert "used_memory:" in outputs["redis-cli -u $REDIS_URL INFO memory"]
    assert int(outputs["redis-cli -u $REDIS_URL LASTSAVE"]) > 0
    dump = (tmp_path / "audit_backup.sql").read_text()
    assert "CREATE TABLE public.action_audit" in dump
    assert str(job.id) in dump  # the job's task.create row
