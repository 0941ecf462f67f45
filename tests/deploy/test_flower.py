"""Flower refuses to start without non-empty FLOWER_BASIC_AUTH credentials, wherever it is started
from and however, refuses anonymous visitors, and listens on 127.0.0.1 unless told otherwise."""

import base64
import json
import shlex
import subprocess
import time
import uuid

import pytest

from core import redis_keys
from core.publish import publish
from orchestrator.job_queue import publish_jobs
from orchestrator.models import Job
from orchestrator.webhooks import DELIVER_WEBHOOK
from scripts.run_stack import flower_command
from tests.helpers import http, submit, wait_for_job
from tests.processes import BIN, ROOT, Process, free_port, http_ok, process_env, wait_until

GOOD = "admin:s3cret-pw"


def bare_flower_command(port: int) -> list[str]:
    """Flower as someone might type it: no --conf, no --address."""
    return [str(BIN / "celery"), "-A", "config", "flower", f"--port={port}"]


def runbook_flower_command(port: int) -> list[str]:
    """The runbook's Flower command line, as an operator in the project directory runs it."""
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    (line,) = [
        line.strip()
        for line in runbook.splitlines()
        if line.strip().startswith("celery -A config flower")
    ]
    assert "--port=5555" in line
    words = shlex.split(line.replace("$PWD", str(ROOT)).replace("--port=5555", f"--port={port}"))
    return [str(BIN / words[0]), *words[1:]]


def flower_env(tmp_path, **variables: str) -> dict[str, str]:
    """A platform process's environment, importable from any directory, Flower unconfigured."""
    env = process_env(FLOWER_DB=str(tmp_path / "flower.db"), PYTHONPATH=str(ROOT), **variables)
    # The test process itself has loaded config.celery: its FLOWER_CONF must not leak in.
    env.pop("FLOWER_CONF", None)
    if "FLOWER_BASIC_AUTH" not in variables:
        env.pop("FLOWER_BASIC_AUTH", None)
    return env


def refused_start(command: list[str], env: dict[str, str], cwd) -> str:
    """Runs Flower expecting it to refuse to start; returns what it printed on stderr."""
    try:
        result = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail("Flower started (and served for 30 s) instead of refusing to")
    assert result.returncode != 0, result.stderr[-2000:]
    return result.stderr


def serving(name: str, command: list[str], env: dict[str, str], cwd, port: int) -> Process:
    process = Process(name, command, env, cwd=cwd)
    try:
        wait_until(lambda: answers("127.0.0.1", port) or answers("127.0.0.2", port), timeout=30)
    except TimeoutError:
        process.stop()
        raise AssertionError(f"flower never answered:\n{process.log()[-2000:]}") from None
    return process


def answers(host: str, port: int) -> bool:
    return http_ok(f"http://{host}:{port}/healthcheck")


def basic(credentials: str) -> dict[str, str]:
    return {"Authorization": f"Basic {base64.b64encode(credentials.encode()).decode()}"}


def test_flower_refuses_to_start_without_credentials(tmp_path):
    stderr = refused_start(flower_command(free_port()), flower_env(tmp_path), cwd=ROOT)

    assert "FLOWER_BASIC_AUTH" in stderr


def test_flower_started_from_another_directory_without_conf_refuses_to_start(tmp_path):
    stderr = refused_start(bare_flower_command(free_port()), flower_env(tmp_path), cwd=tmp_path)

    assert "FLOWER_BASIC_AUTH" in stderr


@pytest.mark.parametrize("credentials", [":", "admin:", ":s3cret", "admin", " : ", f"{GOOD},:"])
def test_flower_refuses_an_empty_user_or_password(tmp_path, credentials):
    env = flower_env(tmp_path, FLOWER_BASIC_AUTH=credentials)

    stderr = refused_start(bare_flower_command(free_port()), env, cwd=tmp_path)

    assert "each user and password non-empty" in stderr


@pytest.mark.parametrize("option", ["--basic-auth=admin:other", "--basic_auth=:", "--auth=.*"])
def test_flower_refuses_credentials_on_the_command_line(tmp_path, option):
    env = flower_env(tmp_path, FLOWER_BASIC_AUTH=GOOD)

    stderr = refused_start([*flower_command(free_port()), option], env, cwd=ROOT)

    assert "not on the command line" in stderr


@pytest.fixture
def flower(tmp_path):
    """Flower started with make run's command, from a directory that is not the project's."""
    port = free_port()
    process = serving(
        "flower",
        flower_command(port),
        flower_env(tmp_path, FLOWER_BASIC_AUTH=GOOD),
        cwd=tmp_path,
        port=port,
    )
    try:
        yield port
    finally:
        process.stop()
    # Persistent state: Flower saved its events where FLOWER_DB says.
    assert list(tmp_path.glob("flower.db*")), process.log()[-2000:]


def test_flower_requires_basic_auth(flower):
    base = f"http://127.0.0.1:{flower}"

    assert http(f"{base}/")[0] == 401
    assert http(f"{base}/", headers=basic("admin:wrong"))[0] == 401
    assert http(f"{base}/", headers=basic(":"))[0] == 401
    status, _, page = http(f"{base}/workers", headers=basic(GOOD))
    assert status == 200
    assert "Flower" in page
    # Flower's own /metrics has no authentication (why :5555 stays private, docs/runbook.md).
    assert http(f"{base}/metrics")[0] == 200


def test_flower_reads_the_broker_and_the_real_depth_of_every_queue(flower, redis_db):
    publish_jobs([uuid.uuid4() for _ in range(3)])
    publish(DELIVER_WEBHOOK, [[str(uuid.uuid4())] for _ in range(2)], headers={})
    base = f"http://127.0.0.1:{flower}"

    status, _, text = http(f"{base}/api/queues/length", headers=basic(GOOD))

    assert status == 200, text
    depths = {queue["name"]: queue["messages"] for queue in json.loads(text)["active_queues"]}
    assert depths == {redis_keys.JOB_QUEUE: 3, redis_keys.WEBHOOK_QUEUE: 2}
    assert http(f"{base}/api/queues/length")[0] == 401  # the API is behind the same login
    status, _, page = http(f"{base}/broker", headers=basic(GOOD))
    assert status == 200
    assert redis_keys.JOB_QUEUE in page
    assert redis_keys.WEBHOOK_QUEUE in page


def test_make_runs_flower_listens_on_localhost_only(flower):
    assert answers("127.0.0.1", flower)
    assert not answers("127.0.0.2", flower)  # another address of this host: not listened on


def test_flower_started_from_another_directory_without_conf_is_authenticated_and_local(tmp_path):
    port = free_port()
    env = flower_env(tmp_path, FLOWER_BASIC_AUTH=GOOD)
    process = serving("flower-bare", bare_flower_command(port), env, cwd=tmp_path, port=port)
    try:
        assert http(f"http://127.0.0.1:{port}/")[0] == 401
        assert http(f"http://127.0.0.1:{port}/", headers=basic(GOOD))[0] == 200
        assert not answers("127.0.0.2", port)  # Flower's own default is every interface
    finally:
        process.stop()


def test_flower_address_moves_where_flower_listens(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWER_ADDRESS", "127.0.0.2")
    port = free_port()
    env = flower_env(tmp_path, FLOWER_BASIC_AUTH=GOOD, FLOWER_ADDRESS="127.0.0.2")
    process = serving("flower-moved", flower_command(port), env, cwd=tmp_path, port=port)
    try:
        assert answers("127.0.0.2", port)
        assert not answers("127.0.0.1", port)
    finally:
        process.stop()


def test_the_runbooks_flower_command_is_authenticated_and_local(tmp_path):
    port = free_port()
    command = runbook_flower_command(port)
    assert "FLOWER_BASIC_AUTH" in refused_start(command, flower_env(tmp_path), cwd=ROOT)

    env = flower_env(tmp_path, FLOWER_BASIC_AUTH=GOOD)
    process = serving("flower-runbook", command, env, cwd=ROOT, port=port)
    try:
        assert http(f"http://127.0.0.1:{port}/")[0] == 401
        assert not answers("127.0.0.2", port)
    finally:
        process.stop()


def event_type(data: bytes) -> str:
    """The type of an event as kombu puts it on a Redis fanout channel (JSON, body base64)."""
    envelope = json.loads(data)
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    return json.loads(body)["type"]


def task_events_seen(redis_db, run) -> list[str]:
    """The task event types published to this Redis database's event exchange during `run()`."""
    db = redis_db.connection_pool.connection_kwargs["db"]
    pubsub = redis_db.pubsub()
    pubsub.psubscribe(f"/{db}.celeryev*")  # kombu's fanout channels: one per database
    try:
        run()
        time.sleep(1)  # events leave the worker in batches
        messages = iter(lambda: pubsub.get_message(timeout=0.2), None)
        return [event_type(m["data"]) for m in messages if m["type"] == "pmessage"]
    finally:
        pubsub.close()


def run_a_job(api_client) -> str:
    response = submit(api_client, client_request_id=f"flower-{uuid.uuid4().hex}", prompt="hi")
    assert response.status_code == 202, response.content
    job = wait_for_job(response.json()["id"])
    assert job.status == Job.Status.SUCCEEDED
    return str(job.pk)


def test_workers_send_no_task_events_while_no_monitor_asks(api_client, worker, redis_db):
    events = task_events_seen(redis_db, lambda: run_a_job(api_client))

    assert not [kind for kind in events if kind.startswith("task-")]


def test_flower_turns_task_events_on_and_shows_the_jobs_tasks(api_client, worker, flower):
    base = f"http://127.0.0.1:{flower}"

    def flower_lists_a_run_job() -> bool:
        job_id = run_a_job(api_client)
        status, _, text = http(f"{base}/api/tasks", headers=basic(GOOD))
        assert status == 200, text
        return any(task["args"] == repr([job_id]) for task in json.loads(text).values())

    wait_until(flower_lists_a_run_job, timeout=45, interval=1, message="no task in Flower")
