"""Submit path: POST /ai/jobs against the bare reference endpoint, same gunicorn, same load."""

import json
import os
import subprocess
import time

from bench.common import ROOT, cpu_seconds, store_cpu_seconds
from orchestrator.api_keys import issue_api_key
from orchestrator.models import Workspace
from orchestrator.redis_client import get_redis
from tests.processes import BIN, Process, free_port, http_ok, process_env, wait_until

LUA = ROOT / "bench" / "wrk" / "submit.lua"
WEB_WORKERS = "4"  # what make run and docker-compose ship


def run_submit(workspace: Workspace, *, seconds: int, connections: list[int]) -> list[dict]:
    """wrk against both endpoints at each concurrency, alternating; one row per run."""
    key = issue_api_key(workspace=workspace, scopes=["jobs:write"], name="bench").plaintext
    port = free_port()
    web = Process(
        "bench-web",
        [str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "-w", WEB_WORKERS],
        process_env(),
    )
    targets = {
        "reference": ("/bench/reference/jobs", None),
        "ours": ("/ai/jobs", f"Bearer {key}"),
    }
    rows = []
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health"), timeout=30)
        for path, auth in targets.values():  # warm both before measuring either
            _wrk(f"http://127.0.0.1:{port}{path}", auth, connections=16, seconds=2)
        for count in connections:
            for name, (path, auth) in targets.items():
                get_redis().flushdb()  # every run starts with an empty queue
                before, stores_before = cpu_seconds(web.popen.pid), store_cpu_seconds()
                result = _wrk(f"http://127.0.0.1:{port}{path}", auth, count, seconds)
                cpu = cpu_seconds(web.popen.pid) - before
                stores = {
                    name: used - stores_before[name] for name, used in store_cpu_seconds().items()
                }
                requests = result["requests"]
                rows.append(
                    {
                        "endpoint": name,
                        "connections": count,
                        "requests": requests,
                        "req_per_s": round(requests / (result["duration_us"] / 1e6), 1),
                        "p50_ms": round(result["p50_us"] / 1000, 2),
                        "p99_ms": round(result["p99_us"] / 1000, 2),
                        "non_2xx": result["non_2xx"],
                        "socket_errors": result["socket_errors"],
                        "server_cpu_ms_per_req": round(cpu * 1000 / max(requests, 1), 3),
                        **{
                            f"{name}_cpu_ms_per_req": round(used * 1000 / max(requests, 1), 3)
                            for name, used in stores.items()
                        },
                    }
                )
    finally:
        web.stop()
        get_redis().flushdb()
    return rows


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
