"""`make bench`: ours against the bare project (bench/bare/), alternated in one run.

The submit path (POST /ai/jobs against the bare endpoint, each on its own gunicorn) and the
worker path (our shipped worker against the bare project's stock Celery worker, same shape, same
simulator), then the targets P1 to P4 as ratios measured in the same run: absolute figures
drift between machines and within minutes on a shared one, ratios of alternated runs much less.
Writes bench/results/<timestamp>.json. Loopback only; every process it starts is stopped, and
the bare project's database is dropped, before it exits. Method: docs/performance.md.
"""

import argparse
import json
import os
import platform
from datetime import UTC, datetime

from django.db import connection

from bench.bare_stack import BareProject
from bench.common import ROOT, prepare
from bench.submit import WEB_WORKERS, run_submit
from bench.worker import Ours, combined, run_worker_config
from scripts.run_stack import WORKER_PROCESSES
from tests.processes import Simulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--seconds", type=int, default=15, help="wrk seconds per endpoint and concurrency"
    )
    parser.add_argument("--connections", default="16,64")
    # Long enough that the first half second (no job finishes before the model answers) and
    # the tail weigh little on a run; each side has two runs.
    parser.add_argument("--jobs", type=int, default=8000, help="jobs per worker run")
    parser.add_argument("--latency-ms", type=int, default=500)
    parser.add_argument("--worker-processes", type=int, default=WORKER_PROCESSES)
    parser.add_argument("--threads", type=int, default=128, help="the shipped WORKER_CONCURRENCY")
    parser.add_argument("--only", choices=["submit", "worker"])
    args = parser.parse_args()

    workspace = prepare()
    bare = BareProject()
    bare.create()
    results: dict = {"machine": machine(), "settings": vars(args)}
    try:
        if args.only != "worker":
            connections = [int(c) for c in args.connections.split(",")]
            results["submit"] = run_submit(
                workspace, bare, seconds=args.seconds, connections=connections
            )
        if args.only != "submit":
            results.update(run_workers(Ours(workspace), bare, args))
    finally:
        bare.drop()
    results["targets"] = targets(results)
    report(results)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwritten {path.relative_to(ROOT)}")


def run_workers(ours: Ours, bare: BareProject, args: argparse.Namespace) -> dict:
    simulator = Simulator(latency_ms=args.latency_ms)
    try:
        shape = {"processes": args.worker_processes, "threads": args.threads, "jobs": args.jobs}
        runs: dict[str, list[dict]] = {"bare": [], "ours": []}
        # In the order bare, ours, ours, bare: a drift in the machine's speed over the phase
        # (neighbours, the submit phase's writes) lands on both sides alike.
        for side in (bare, ours, ours, bare):
            runs[side.name].append(run_worker_config(side, simulator, **shape))
    finally:
        simulator.stop()
    return {
        "worker_runs": runs["bare"] + runs["ours"],
        "worker": [combined(runs["bare"]), combined(runs["ours"])],
    }


def machine() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "pg_max_connections": max_connections,
    }


def targets(results: dict) -> list[dict]:
    """P1 to P4, each a ratio against the bare project measured in this run (P4 absolute)."""
    rows = []
    for row in results.get("submit", []):
        if row["endpoint"] != "ours":
            continue
        bare = next(
            r
            for r in results["submit"]
            if r["endpoint"] == "bare" and r["connections"] == row["connections"]
        )
        c = row["connections"]
        rows.append(
            _target(f"P1 req/s vs bare @{c}", row["req_per_s"] / bare["req_per_s"], ">=", 1.0)
        )
        rows.append(_target(f"P1 p99 vs bare @{c}", row["p99_ms"] / bare["p99_ms"], "<=", 1.5))
    worker = results.get("worker")
    if worker:
        bare, ours = worker
        rows.append(
            _target("P2 jobs/s vs bare task", ours["jobs_per_s"] / bare["jobs_per_s"], ">=", 0.95)
        )
        rows.append(
            _target(
                "P3 worker CPU/job vs bare task",
                ours["cpu_ms_per_job"] / bare["cpu_ms_per_job"],
                "<=",
                1.0,
            )
        )
        rows.append(_target("P4 RSS MB per worker process", ours["rss_mb_per_process"], "<=", 300))
        limit = results["machine"]["pg_max_connections"]
        rows.append(
            _target("P4 peak PG connections / max", ours["peak_pg_connections"] / limit, "<", 1.0)
        )
    return rows


def _target(name: str, value: float, op: str, bound: float) -> dict:
    met = {">=": value >= bound, "<=": value <= bound, "<": value < bound}[op]
    return {"target": name, "value": round(value, 2), "bound": f"{op} {bound}", "met": met}


def report(results: dict) -> None:
    m = results["machine"]
    print(
        f"\nmachine: {m['cores']} cores, Python {m['python']}, PostgreSQL {m['postgresql']} "
        f"(max_connections {m['pg_max_connections']})"
    )
    if "submit" in results:
        print(f"\nsubmit (gunicorn sync x{WEB_WORKERS} each, wrk 2 threads)")
        print("CPU ms/req: the web server's, then PostgreSQL's and Redis's for the same requests")
        print(
            f"{'endpoint':<11}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'CPU web':>9}{'PG':>7}{'Redis':>7}{'non-2xx':>9}"
        )
        for r in results["submit"]:
            print(
                f"{r['endpoint']:<11}{r['connections']:>6}{r['req_per_s']:>9}{r['p50_ms']:>9}"
                f"{r['p99_ms']:>9}{r['server_cpu_ms_per_req']:>9}{r['postgres_cpu_ms_per_req']:>7}"
                f"{r['redis_cpu_ms_per_req']:>7}{r['non_2xx']:>9}"
            )
    if "worker" in results:
        print(f"\nworker (simulator at {results['settings']['latency_ms']} ms)")
        print(
            "CPU ms/job: the workers' (from ready), then the simulator's, PostgreSQL's and "
            "Redis's for the same jobs"
        )
        print(
            f"{'task':<11}{'pool':<18}{'jobs':>6}{'jobs/s':>8}{'ideal':>8}"
            f"{'CPU':>7}{'sim':>6}{'PG':>6}{'Redis':>6}{'RSS MB':>8}{'PG conns':>10}"
        )
        for r in results["worker"]:
            print(
                f"{r['task']:<11}{r['pool']:<18}{r['jobs']:>6}{r['jobs_per_s']:>8}"
                f"{r['ideal_jobs_per_s']:>8}{r['cpu_ms_per_job']:>7}"
                f"{r['simulator_cpu_ms_per_job']:>6}{r['postgres_cpu_ms_per_job']:>6}"
                f"{r['redis_cpu_ms_per_job']:>6}{r['rss_mb_per_process']:>8}"
                f"{r['peak_pg_connections']:>10}"
            )
    print("\ntargets")
    for t in results["targets"]:
        print(
            f"{t['target']:<34}{t['value']:>8}  {t['bound']:<8}{'met' if t['met'] else 'NOT MET'}"
        )


if __name__ == "__main__":
    main()
