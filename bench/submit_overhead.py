"""What the metrics and the request context cost on POST /ai/jobs: a baseline tree against this
one, served alike (gunicorn, 2 processes) and loaded alike, alternating rounds in the same run.

The baseline is a checkout of an earlier commit, e.g.
    git worktree add /tmp/orch-baseline <commit>   (or: git archive <commit> | tar -x -C DIR)
    .venv/bin/python bench/submit_overhead.py --baseline /tmp/orch-baseline
Runs on its own database (orchestrator_bench_submit) and Redis database (BENCH_REDIS_URL,
default 9); no worker runs, so every request publishes one message that stays queued.
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    {
        "ENV_FILE": "",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "LOG_FILE": "",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"),
        "DATABASE_URL": os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orchestrator_bench_submit"
        ),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
    }
)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from orchestrator.api_keys import issue_api_key  # noqa: E402
from orchestrator.models import Workspace  # noqa: E402
from orchestrator.redis_client import get_redis  # noqa: E402
from scripts.run_stack import ensure_database  # noqa: E402
from tests.processes import BIN, Process, free_port, http_ok, process_env, wait_until  # noqa: E402


def serve(tree: Path) -> tuple[Process, int]:
    port = free_port()
    config = ["-c", "config/gunicorn.py"] if (tree / "config" / "gunicorn.py").exists() else []
    command = [str(BIN / "gunicorn"), *config, "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    env = process_env()
    process = Process("web", [*command, "--workers", "2", "--chdir", str(tree)], env)
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health"), timeout=30)
    return process, port


def load(port: int, key: str, *, requests: int, clients: int) -> float:
    """Requests per second of `clients` keep-alive connections submitting distinct jobs."""
    per_client = requests // clients
    errors: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        for _ in range(per_client):
            body = json.dumps({"client_request_id": uuid.uuid4().hex, "prompt": "Hello"})
            conn.request("POST", "/ai/jobs", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 202:
                errors.append(str(response.status))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed: {errors[:5]}")
    return per_client * clients / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument(
        "--variant", action="append", default=[], help="NAME=DIR: another tree to load alike"
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from django.conf import settings

    ensure_database(settings.DATABASES["default"])
    call_command("migrate", verbosity=0)
    workspace, _ = Workspace.objects.get_or_create(pk="ws-bench", defaults={"name": "Bench"})
    key = issue_api_key(workspace=workspace, scopes=["jobs:write"]).plaintext
    trees = {"baseline": args.baseline.resolve(), "candidate": ROOT}
    for variant in args.variant:
        name, _, directory = variant.partition("=")
        trees[name] = Path(directory).resolve()
    rates: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            get_redis().flushdb()
            process, port = serve(tree)
            try:
                load(port, key, requests=200, clients=args.clients)  # warm-up
                rates[name].append(load(port, key, requests=args.requests, clients=args.clients))
            finally:
                process.stop()
    get_redis().flushdb()
    result = {name: [round(r, 1) for r in values] for name, values in rates.items()}
    for name in trees:
        if name != "baseline":
            result[f"{name}/baseline (median)"] = round(
                statistics.median(rates[name]) / statistics.median(rates["baseline"]), 3
            )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
