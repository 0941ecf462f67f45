"""`make run` on a machine where nothing answers on PostgreSQL's and Redis's default ports.

scripts/run_stack.py runs as shipped, no URL set, in a network namespace of its own, so the
default ports (5432, 6379, 8000, 5555, 8001) are closed there whatever this machine runs: it
must start project-local stores, bring the stack to /ready 200, restart a worker that dies, run
a job, and on SIGTERM stop everything it started, keeping the stores' data."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.local_stores import pg_bin_dir
from tests.housekeeping import processes_using
from tests.processes import ROOT, Process, wait_until


def namespaces_work() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return False
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    return probe.returncode == 0


pytestmark = [
    pytest.mark.skipif(not namespaces_work(), reason="needs root and network namespaces"),
    pytest.mark.skipif(pg_bin_dir() is None, reason="no PostgreSQL server binaries"),
    pytest.mark.timeout(300),
]


def in_namespace(pid: int, code: str) -> str:
    """Run Python `code` inside the network namespace of process `pid`; its stdout."""
    result = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


def http(pid: int, method: str, path: str, key: str = "", body: dict | None = None) -> dict:
    code = f"""
import json, urllib.request, urllib.error
request = urllib.request.Request("http://127.0.0.1:8000{path}", method={method!r},
    data={json.dumps(body).encode() if body else None!r},
    headers={{"Authorization": "Bearer {key}", "Content-Type": "application/json"}})
try:
    response = urllib.request.urlopen(request, timeout=5)
    status, text = response.status, response.read().decode()
except urllib.error.HTTPError as error:
    status, text = error.code, error.read().decode()
except OSError as error:
    status, text = 0, json.dumps({{"error": str(error)}})
print(json.dumps({{"status": status, "body": json.loads(text or "{{}}")}}))
"""
    return json.loads(in_namespace(pid, code))


def pids_in_namespace(pid: int) -> list[int]:
    namespace = os.readlink(f"/proc/{pid}/ns/net")
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "net") == namespace:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="run-"))
    path.chmod(0o755)  # as root, the local cluster runs as `postgres`, who must reach it
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_run(run_dir) -> Iterator[Process]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith(("DATABASE_URL", "REDIS_URL")) and key != "OPENAI_API_KEY"
    }
    env.update(
        ENV_FILE="",
        RUN_DIR=str(run_dir),
        DEBUG="false",
        SECRET_KEY="test-only-secret-key",
        LOG_FILE="",
        WORKER_PROCESSES="1",
        WEB_CONCURRENCY="2",
        SIMULATOR_LATENCY_MS="0",
        PYTHONUNBUFFERED="1",
    )
    python = ROOT / ".venv" / "bin" / "python"
    command = f"ip link set lo up && exec {python if python.exists() else sys.executable} "
    command += str(ROOT / "scripts" / "run_stack.py")
    process = Process("make-run", ["unshare", "--net", "sh", "-c", command], env)
    yield process
    process.stop(timeout=60)


def test_make_run_with_nothing_on_the_default_ports_runs_on_project_local_stores(make_run, run_dir):
    make_run.wait_for_log("AI Orchestrator is up", timeout=180)
    log = make_run.log()
    assert "stores: PostgreSQL: nothing usable on 127.0.0.1:5432" in log
    assert "stores: PostgreSQL: project-local, created and started in" in log
    assert "stores: Redis: project-local, started in" in log
    assert "postgres://postgres@127.0.0.1:5432/orchestrator (project-local)" in log
    assert "redis://127.0.0.1:6379/0 (project-local)" in log
    assert "http://127.0.0.1:8000/api/docs/" in log
    assert (
        "http://127.0.0.1:8000/admin/    create a user: .venv/bin/python manage.py createsuperuser"
        in log
    )
    assert f"http://127.0.0.1:5555/   user admin, password in {run_dir}/flower-password" in log
    supervisor = make_run.popen.pid

    ready = http(supervisor, "GET", "/ready")
    assert ready["status"] == 200, ready

    # A worker that dies comes back; the stack goes on.
    worker = int(re.search(r"worker1 started \(pid (\d+)\)", log).group(1))
    os.kill(worker, signal.SIGKILL)
    make_run.wait_for_log("worker1 started again", timeout=30)

    key = (run_dir / "demo-api-key").read_text().strip()
    submitted = http(
        supervisor, "POST", "/ai/jobs", key, {"client_request_id": "local-1", "prompt": "Hi"}
    )
    assert submitted["status"] == 202, submitted

    def finished() -> bool:
        job = http(supervisor, "GET", f"/ai/jobs/{submitted['body']['id']}", key)
        return job["body"].get("status") == "succeeded"

    wait_until(finished, timeout=60, interval=1, message="the job never succeeded")

    started = pids_in_namespace(supervisor)
    make_run.popen.send_signal(signal.SIGTERM)
    assert make_run.popen.wait(timeout=90) == 0, make_run.log()[-3000:]
    assert not [pid for pid in started if alive(pid)]
    assert processes_using(run_dir) == []
    assert (run_dir / "postgres" / "PG_VERSION").is_file()
    assert list((run_dir / "redis").glob("appendonly*"))
    assert not list(run_dir.glob("*.owner"))


def test_make_test_with_nothing_on_the_default_ports_gets_project_local_stores(run_dir):
    probe = (
        "import os, psycopg, redis; "
        "psycopg.connect(os.environ['DATABASE_URL'].rsplit('/', 1)[0] + '/postgres').close(); "
        "assert redis.Redis.from_url(os.environ['REDIS_URL']).ping(); "
        "print(os.environ['DATABASE_URL'], os.environ['REDIS_URL'])"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith(("DATABASE_URL", "REDIS_URL"))
    }
    script = f"ip link set lo up && exec {sys.executable} {ROOT / 'scripts' / 'stores.py'} "
    script += "--for-tests -- " + " ".join([sys.executable, "-c", f'"{probe}"'])

    result = subprocess.run(
        ["unshare", "--net", "sh", "-c", script],
        env={**env, "RUN_DIR": str(run_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "postgres://postgres@127.0.0.1:5432/orchestrator redis://127.0.0.1:6379/15" in (
        result.stdout
    )
    assert "stores: Redis: project-local" in result.stdout
    assert processes_using(run_dir) == []  # stopped with the command
    assert (run_dir / "postgres" / "PG_VERSION").is_file()
