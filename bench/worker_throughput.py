"""Worker throughput against a slow model: the shipped threads pool versus prefork.

Submits N jobs through the job service (so each is stored, keyed and published as over the API),
then starts one worker configuration and measures, from the job rows, jobs/s from the first
start to the last finish. Also reports worker CPU per job, RSS, and peak PostgreSQL connections.
Runs on its own database (orchestrator_bench) and Redis database (8); loopback only.

    .venv/bin/python bench/worker_throughput.py [--latency-ms 500] [--jobs 600]
"""

import argparse
import json
import os
import sys
import threading
from datetime import UTC, datetime
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
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"),
    }
)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Max, Min  # noqa: E402

from orchestrator import services  # noqa: E402
from orchestrator.models import Job, Workspace  # noqa: E402
from orchestrator.redis_client import get_redis  # noqa: E402
from scripts.run_stack import ensure_database  # noqa: E402
from tests.processes import BIN, Process, Simulator, process_env, wait_until  # noqa: E402

CONFIGS = {
    # name: (processes, pool, concurrency per process)
    "prefork x4 (Celery default shape)": (1, "prefork", 4),
    "threads 1x128 (make run)": (1, "threads", 128),
    "threads 2x128 (one per core)": (2, "threads", 128),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=600, help="jobs per threads configuration")
    args = parser.parse_args()

    from django.conf import settings

    ensure_database(settings.DATABASES["default"])
    call_command("migrate", verbosity=0)
    # Unlimited (0): the bench measures workers, not the API's rate limit.
    workspace, _ = Workspace.objects.update_or_create(
        pk="ws-bench", defaults={"name": "Bench", "rate_limit_per_minute": 0}
    )
    simulator = Simulator(latency_ms=args.latency_ms)
    results = []
    try:
        for name, (processes, pool, concurrency) in CONFIGS.items():
            # prefork is ~20x slower: fewer jobs keep the run within minutes.
            jobs = max(40, args.jobs // 15) if pool == "prefork" else args.jobs
            row = run_config(workspace, simulator, name, processes, pool, concurrency, jobs)
            row["ideal_jobs_per_s"] = round(processes * concurrency / (args.latency_ms / 1000), 1)
            results.append(row)
    finally:
        simulator.stop()

    baseline = results[0]["jobs_per_s"]
    for row in results:
        row["ratio_vs_prefork"] = round(row["jobs_per_s"] / baseline, 1)
    print_table(results, args.latency_ms)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"worker-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"latency_ms": args.latency_ms, "results": results}, indent=2))
    print(f"written {path.relative_to(ROOT)}")


def run_config(workspace, simulator, name, processes, pool, concurrency, jobs) -> dict:
    Job.objects.filter(workspace=workspace).delete()
    get_redis().flushdb()
    tag = datetime.now(UTC).strftime("%H%M%S%f")
    for index in range(jobs):
        services.submit_job(
            workspace=workspace,
            client_request_id=f"bench-{tag}-{index}",
            messages=[{"role": "user", "content": f"benchmark job {index}"}],
        )

    peak = PeakConnections(connection.settings_dict["NAME"])
    peak.start()
    workers = [
        Process(
            f"bench-worker-{i}",
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                "-l",
                "warning",
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "--without-mingle",
                "--without-gossip",
                "-n",
                f"bench-{i}-{tag}@%h",
            ],
            process_env(OPENAI_BASE_URL=simulator.base_url, OPENAI_API_KEY="bench"),
        )
        for i in range(processes)
    ]
    try:
        wait_until(
            lambda: (
                not Job.objects.filter(workspace=workspace)
                .exclude(status__in=Job.FINAL_STATUSES)
                .exists()
            ),
            timeout=600,
            interval=0.5,
        )
        cpu_seconds = sum(process_tree_cpu_seconds(w.popen.pid) for w in workers)
        rss_mb = max(process_tree_rss_mb(w.popen.pid) for w in workers)
    finally:
        for worker in workers:
            worker.stop()
        peak.stop()

    done = Job.objects.filter(workspace=workspace)
    span = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
    elapsed = (span["last"] - span["first"]).total_seconds()
    succeeded = done.filter(status=Job.Status.SUCCEEDED).count()
    return {
        "config": name,
        "jobs": jobs,
        "succeeded": succeeded,
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed, 1),
        "cpu_ms_per_job": round(cpu_seconds * 1000 / jobs, 2),
        "rss_mb_per_process_max": round(rss_mb, 1),
        "peak_pg_connections": peak.peak,
    }


class PeakConnections(threading.Thread):
    """Samples pg_stat_activity for the bench database every 100 ms."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres") as conn:
            while not self._stop_event.wait(0.1):
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [self.database]
                ).fetchone()
                self.peak = max(self.peak, count)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=2)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for child in _children(pid):
        pids.extend(_tree(child))
    return pids


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (prefork), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for each in _tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def process_tree_rss_mb(pid: int) -> float:
    """The largest resident set among a process and its children, in MB."""
    largest = 0.0
    for each in _tree(pid):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    largest = max(largest, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return largest


def print_table(results: list[dict], latency_ms: int) -> None:
    print(f"\nworker throughput, model latency {latency_ms} ms, {os.cpu_count()} cores")
    header = f"{'configuration':<34}{'jobs':>6}{'jobs/s':>9}{'ideal':>8}{'x prefork':>11}"
    header += f"{'CPU ms/job':>12}{'RSS MB':>9}{'PG conns':>10}"
    print(header)
    for row in results:
        print(
            f"{row['config']:<34}{row['jobs']:>6}{row['jobs_per_s']:>9}"
            f"{row['ideal_jobs_per_s']:>8}{row['ratio_vs_prefork']:>11}"
            f"{row['cpu_ms_per_job']:>12}{row['rss_mb_per_process_max']:>9}"
            f"{row['peak_pg_connections']:>10}"
        )


if __name__ == "__main__":
    main()
