"""`make bench`: the submit path and the worker path, each against its bare reference, in one run.

Prints one table with the targets P1 to P4 as ratios measured in the same run (absolute figures
drift between machines) and writes bench/results/<timestamp>.json. Loopback only; every process
it starts is stopped before it exits.
"""

import argparse
import json
import os
from datetime import UTC, datetime

from django.db import connection

from bench.common import ROOT, prepare
from bench.submit import run_submit
from bench.worker import combined, run_worker_config
from scripts.run_stack import WORKER_PROCESSES
from tests.processes import Simulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--seconds", type=int, default=15, help="wrk seconds per endpoint and concurrency"
    )
    parser.add_argument("--connections", default="16,64")
    # About 30 s a run: no job finishes in a run's first half second, so the ramp and the tail
    # weigh on a short run (8% of a 10 s one); prefork's run (a 25th of the jobs) lasts 50 s.
    # Each task has two threads-pool runs.
    parser.add_argument("--jobs", type=int, default=10000, help="jobs per threads-pool run")
    parser.add_argument("--latency-ms", type=int, default=500)
    parser.add_argument("--worker-processes", type=int, default=WORKER_PROCESSES)
    parser.add_argument("--threads", type=int, default=128)
    parser.add_argument("--only", choices=["submit", "worker"])
    args = parser.parse_args()

    workspace = prepare()
    results: dict = {"machine": machine(), "settings": vars(args)}
    if args.only != "worker":
        connections = [int(c) for c in args.connections.split(",")]
        results["submit"] = run_submit(workspace, seconds=args.seconds, connections=connections)
    if args.only != "submit":
        simulator = Simulator(latency_ms=args.latency_ms)
        try:
            shape = {"processes": args.worker_processes, "pool": "threads", "threads": args.threads}
            runs: dict[str, list[dict]] = {"reference": [], "ours": []}
            # In the order reference, ours, ours, reference: a drift in the machine's speed over
            # the phase (neighbours, the submit phase's writes) lands on both sides alike.
            for task in ("reference", "ours", "ours", "reference"):
                runs[task].append(
                    run_worker_config(workspace, simulator, task=task, jobs=args.jobs, **shape)
                )
            results["worker_runs"] = runs["reference"] + runs["ours"]
            results["worker"] = [
                combined(runs["reference"]),
                combined(runs["ours"]),
                run_worker_config(
                    workspace,
                    simulator,
                    task="ours",
                    processes=1,
                    pool="prefork",
                    threads=4,
                    jobs=max(40, args.jobs // 25),
                ),
            ]
        finally:
            simulator.stop()
    results["targets"] = targets(results)
    report(results)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwritten {path.relative_to(ROOT)}")


def machine() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    return {"cores": os.cpu_count(), "pg_max_connections": max_connections}


def targets(results: dict) -> list[dict]:
    """P1 to P4, each a ratio against its reference measured in this run."""
    rows = []
    for row in results.get("submit", []):
        if row["endpoint"] != "ours":
            continue
        ref = next(
            r
            for r in results["submit"]
            if r["endpoint"] == "reference" and r["connections"] == row["connections"]
        )
        c = row["connections"]
        rows.append(
            _target(f"P1 req/s vs reference @{c}", row["req_per_s"] / ref["req_per_s"], ">=", 1.0)
        )
        rows.append(_target(f"P1 p99 vs reference @{c}", row["p99_ms"] / ref["p99_ms"], "<=", 1.5))
    worker = results.get("worker")
    if worker:
        ref, ours, prefork = worker
        rows.append(
            _target(
                "P2 jobs/s vs reference task", ours["jobs_per_s"] / ref["jobs_per_s"], ">=", 0.95
            )
        )
        rows.append(
            _target("P2 jobs/s vs prefork x4", ours["jobs_per_s"] / prefork["jobs_per_s"], ">=", 40)
        )
        rows.append(
            _target(
                "P3 CPU/job vs reference task",
                ours["cpu_ms_per_job"] / ref["cpu_ms_per_job"],
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
    print(f"\nmachine: {m['cores']} cores, PostgreSQL max_connections {m['pg_max_connections']}")
    if "submit" in results:
        print("\nsubmit (gunicorn sync x4, wrk 2 threads)")
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
