"""Submit path: POST /ai/jobs against the bare project's endpoint, each on its own gunicorn."""

import json
import os
import statistics
import subprocess
import time
import urllib.error
import urllib.request

from redis import Redis

from bench.bare_stack import BareProject
from bench.common import ROOT, cpu_seconds, store_cpu_seconds
from core import redis_keys
from core.redis_client import get_redis
from orchestrator.api_keys import issue_api_key
from orchestrator.models import Workspace
from tests.processes import BIN, Process, free_port, http_ok, process_env, wait_until

LUA = ROOT / "bench" / "wrk" / "submit.lua"
WEB_WORKERS = "4"  # what make run and docker-compose ship


# Each figure sums several short wrk runs that alternate between the endpoints, so a burst of
# load from a neighbour on the shared machine lands on both sides instead of on one of them.
ROUNDS = 3


def run_submit(
    workspace: Workspace, bare: BareProject, *, seconds: int, connections: list[int]
) -> list[dict]:
    """wrk against both endpoints at each concurrency, `seconds` each in ROUNDS alternating
    runs; one row per endpoint and concurrency."""
    key = issue_api_key(workspace=workspace, scopes=["jobs:write"], name="bench").plaintext
    ours_port, bare_port = free_port(), free_port()
    # Ours as shipped: the gunicorn config make run and docker-compose.yml start it with.
    ours = Process(
        "bench-web",
        [
            str(BIN / "gunicorn"),
            "-c",
            "config/gunicorn.py",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{ours_port}",
            "--workers",
            WEB_WORKERS,
        ],
        process_env(),
    )
    bare_web = bare.web(bare_port, WEB_WORKERS)
    # Name: (server, URL, Authorization, Redis holding its queue, queue key).
    targets = {
        "bare": (bare_web, f"http://127.0.0.1:{bare_port}/jobs", None, bare.redis, bare.queue),
        "ours": (
            ours,
            f"http://127.0.0.1:{ours_port}/ai/jobs",
            f"Bearer {key}",
            get_redis(),
            redis_keys.JOB_QUEUE,
        ),
    }
    round_seconds = max(1, round(seconds / ROUNDS))
    rows = []
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{ours_port}/health"), timeout=30)
        wait_until(lambda: _listening(bare_port), timeout=30)
        for _, url, auth, _, _ in targets.values():  # warm both before measuring either
            _wrk(url, auth, connections=16, seconds=2)
        for count in connections:
            runs: dict[str, list[dict]] = {name: [] for name in targets}
            for round_number in range(ROUNDS):
                order = list(targets) if round_number % 2 == 0 else list(reversed(targets))
                for name in order:
                    runs[name].append(_measured_run(*targets[name], count, round_seconds))
            rows += [_row(name, count, measured) for name, measured in runs.items()]
    finally:
        ours.stop()
        bare_web.stop()
        get_redis().flushdb()
        bare.redis.flushdb()
    return rows


def _listening(port: int) -> bool:
    # The bare project has no health route: any HTTP answer (a 405 to GET) means it serves.
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/jobs", timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def _measured_run(
    web: Process,
    url: str,
    auth: str | None,
    redis: Redis,
    queue: str,
    connections: int,
    seconds: int,
) -> dict:
    redis.delete(queue)  # every run starts with an empty queue (no worker drains it here)
    before, stores_before = cpu_seconds(web.popen.pid), store_cpu_seconds()
    result = _wrk(url, auth, connections, seconds)
    result["web_cpu_s"] = cpu_seconds(web.popen.pid) - before
    result["stores_cpu_s"] = {
        name: used - stores_before[name] for name, used in store_cpu_seconds().items()
    }
    return result


def _row(endpoint: str, connections: int, runs: list[dict]) -> dict:
    """Totals over the runs; latency percentiles are the median of the runs' own."""
    requests = sum(run["requests"] for run in runs)
    duration_s = sum(run["duration_us"] for run in runs) / 1e6
    thousands = max(requests, 1) / 1000  # CPU seconds per thousand requests = ms per request
    stores = {name for run in runs for name in run["stores_cpu_s"]}
    return {
        "endpoint": endpoint,
        "connections": connections,
        "runs": len(runs),
        "requests": requests,
        "req_per_s": round(requests / duration_s, 1),
        "p50_ms": round(statistics.median(run["p50_us"] for run in runs) / 1000, 2),
        "p99_ms": round(statistics.median(run["p99_us"] for run in runs) / 1000, 2),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "socket_errors": sum(run["socket_errors"] for run in runs),
        "server_cpu_ms_per_req": round(sum(run["web_cpu_s"] for run in runs) / thousands, 3),
        **{
            f"{name}_cpu_ms_per_req": round(
                sum(run["stores_cpu_s"][name] for run in runs) / thousands, 3
            )
            for name in sorted(stores)
        },
    }


def _wrk(url: str, auth: str | None, connections: int, seconds: int) -> dict:
    env = {**os.environ, "BENCH_RUN": f"{time.time_ns()}"}
    if auth:
        env["BENCH_AUTH"] = auth
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA), url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    line = next(x for x in output.splitlines() if x.startswith("BENCH_JSON "))
    return json.loads(line.removeprefix("BENCH_JSON "))
