"""POST /ai/jobs throughput: this tree against a baseline tree, in the same run.

Starts gunicorn (2 processes) from each source tree in turn on the same database and a private
redis-server, sends the same load to each (distinct client_request_ids, C concurrent
connections), alternating rounds, and reports req/s and the Redis commands run per request, by
name (those a Lua script runs inside EVALSHA are not round trips of their own). The figure is
the ratio of medians. Loopback only; no worker runs (messages stay in the queue, flushed
between rounds).

    mkdir /tmp/orch-baseline && git archive <commit> | tar -x -C /tmp/orch-baseline
    .venv/bin/python bench/api_submit.py --baseline /tmp/orch-baseline [--candidate DIR]
"""

import argparse
import json
import os
import statistics
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    {
        "ENV_FILE": "",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"),
        "DATABASE_URL": os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orchestrator_bench"
        ),
    }
)

from tests.processes import RedisServer, free_port  # noqa: E402

# Its own Redis, so that the command counts are ours alone.
REDIS = RedisServer(free_port())
os.environ["REDIS_URL"] = REDIS.url

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from core.redis_client import get_redis  # noqa: E402
from orchestrator.models import Job, Workspace  # noqa: E402
from scripts.run_stack import ensure_database  # noqa: E402
from tests.factories import make_api_key  # noqa: E402
from tests.processes import BIN, Process, http_ok, process_env, wait_until  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", required=True, help="source tree to compare against")
    parser.add_argument("--candidate", default=str(ROOT), help="source tree measured")
    parser.add_argument("--requests", type=int, default=800, help="per round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    try:
        run(args)
    finally:
        REDIS.stop()


def run(args) -> None:

    ensure_database(settings.DATABASES["default"])
    call_command("migrate", verbosity=0)
    # A limit far above the load, so every request pays for the check but none is refused.
    workspace, _ = Workspace.objects.update_or_create(
        pk="ws-bench-api", defaults={"name": "Bench API", "rate_limit_per_minute": 100_000}
    )
    key = make_api_key(workspace, scopes=["jobs:write"])
    trees = {"baseline": Path(args.baseline).resolve(), "this tree": Path(args.candidate).resolve()}
    results: dict[str, list[dict]] = {name: [] for name in trees}
    for round_number in range(args.rounds):
        for name, tree in trees.items():
            row = run_round(tree, key, workspace, args, tag=f"{round_number}-{name[:4]}")
            results[name].append(row)
            print(f"round {round_number + 1} {name:9s} {json.dumps(row)}", flush=True)
    medians = {
        name: {
            "req_per_s": statistics.median(r["req_per_s"] for r in rows),
            "web_cpu_ms_per_request": statistics.median(r["web_cpu_ms_per_request"] for r in rows),
            "redis_commands_per_request": rows[-1]["redis_commands_per_request"],
        }
        for name, rows in results.items()
    }
    ratios = {
        metric: round(medians["this tree"][metric] / medians["baseline"][metric], 3)
        for metric in ("req_per_s", "web_cpu_ms_per_request")
    }
    print(json.dumps({"medians": medians, "ratio_this_vs_baseline": ratios}, indent=2))


def run_round(tree: Path, key: str, workspace, args, *, tag: str) -> dict:
    Job.objects.filter(workspace=workspace).delete()
    redis = get_redis()
    redis.flushdb()
    port = free_port()
    env = process_env()
    env["PYTHONPATH"] = str(tree)
    web = Process(
        "bench-web",
        [
            str(BIN / "gunicorn"),
            "-c",
            "config/gunicorn.py",  # each tree's own, as shipped
            "config.wsgi",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        env,
        cwd=tree,  # gunicorn puts its working directory first on the path: this tree's code
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{base_url}/health"), timeout=30)
        for index in range(50):  # warm up both processes: imports, pools, the script cache
            post(base_url, key, f"warm-{tag}-{index}")
        redis.config_resetstat()
        cpu_before = _tree_cpu_seconds(web.popen.pid)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            statuses = list(
                pool.map(lambda i: post(base_url, key, f"b-{tag}-{i}"), range(args.requests))
            )
        elapsed = time.monotonic() - started
        cpu = _tree_cpu_seconds(web.popen.pid) - cpu_before
        commands = {
            name.removeprefix("cmdstat_"): round(stats["calls"] / args.requests, 2)
            for name, stats in redis.info("commandstats").items()
            if stats["calls"] >= args.requests / 2  # the per-request ones, not the bookkeeping
        }
    finally:
        web.stop()
    assert statuses.count(202) == args.requests, sorted(set(statuses))
    return {
        "req_per_s": round(args.requests / elapsed, 1),
        # CPU of the gunicorn processes: steadier than req/s on a machine shared with others.
        "web_cpu_ms_per_request": round(cpu * 1000 / args.requests, 2),
        # Includes the broker's publishing of each message, the same in both trees.
        "redis_commands_per_request": commands,
    }


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (gunicorn's workers), from /proc."""
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    pids, seen = [pid], set()
    while pids:
        current = pids.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        pids += [int(child) for child in children]
    return total


def post(base_url: str, key: str, client_request_id: str) -> int:
    request = urllib.request.Request(
        f"{base_url}/ai/jobs",
        data=json.dumps({"client_request_id": client_request_id, "prompt": "bench"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


if __name__ == "__main__":
    main()
