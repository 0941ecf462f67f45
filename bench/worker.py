"""End to end: N jobs through real worker processes against the simulator at a fixed latency.

Our job (claim, model call, stored plan, outcome) through the shipped worker command, against
the bare project's task (one model call and one UPDATE) through Celery's stock worker, both in
the shipped shape (processes x threads). Jobs/s run from the first start to the last finish,
read from each side's rows.
"""

import time
import uuid
from datetime import datetime
from typing import Protocol

from django.db import connection
from django.db.models import Count, Max, Min, Q
from redis import Redis

from bench.common import (
    PeakConnections,
    clear_jobs,
    cpu_seconds,
    largest_rss_mb,
    store_cpu_seconds,
)
from core import redis_keys
from core.redis_client import get_redis
from orchestrator import services
from orchestrator.models import Job, Workspace
from scripts.run_stack import worker_command
from tests.processes import Process, Simulator, process_env

STAGED = "bench:staged-jobs"


class Side(Protocol):
    """One of the two services measured: ours or the bare project."""

    name: str
    queue: str
    database: str
    redis: Redis

    def reset(self) -> None: ...
    def enqueue(self, jobs: int, run: str) -> None: ...
    def worker(self, *, base_url: str, threads: int, index: int, suffix: str) -> Process: ...
    def unfinished(self) -> int: ...
    def outcome(self) -> tuple[datetime, datetime, int]: ...


class Ours:
    name = "ours"
    queue = redis_keys.JOB_QUEUE

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.database = connection.settings_dict["NAME"]
        self.redis = get_redis()

    def reset(self) -> None:
        clear_jobs(self.workspace)
        with connection.cursor() as cursor:  # every run starts from a table without dead rows
            cursor.execute(f"VACUUM ANALYZE {Job._meta.db_table}")
        self.redis.flushdb()

    def enqueue(self, jobs: int, run: str) -> None:
        # Through the service, as over the API: stored, keyed, published after commit.
        for index in range(jobs):
            services.submit_job(
                workspace=self.workspace,
                client_request_id=f"bench-{run}-{index}",
                messages=[{"role": "user", "content": f"benchmark job {index}"}],
            )

    def worker(self, *, base_url: str, threads: int, index: int, suffix: str) -> Process:
        """The worker exactly as make run and docker-compose.yml ship it."""
        return Process(
            f"bench-worker-{index}",
            worker_command(f"bench-{index}-{suffix}@%h"),
            process_env(
                OPENAI_BASE_URL=base_url, OPENAI_API_KEY="bench", WORKER_CONCURRENCY=str(threads)
            ),
        )

    def unfinished(self) -> int:
        rows = Job.objects.filter(workspace=self.workspace)
        return rows.exclude(status__in=Job.FINAL_STATUSES).count()

    def outcome(self) -> tuple[datetime, datetime, int]:
        span = Job.objects.filter(workspace=self.workspace).aggregate(
            first=Min("started_at"),
            last=Max("finished_at"),
            done=Count("id", filter=Q(status=Job.Status.SUCCEEDED)),
        )
        return span["first"], span["last"], span["done"]


def run_worker_config(
    side: Side, simulator: Simulator, *, processes: int, threads: int, jobs: int
) -> dict:
    """Queue `jobs` jobs of one side, then drain them with `processes` x `threads` workers."""
    side.reset()
    with connection.cursor() as cursor:
        # No dirty pages left: writing out the last phase's would count as this run's.
        cursor.execute("CHECKPOINT")
    side.enqueue(jobs, uuid.uuid4().hex[:8])
    # The workers boot with nothing to take, so their start-up (imports, Django, connections)
    # is no part of a job's cost and all of them are ready when the jobs appear, at once.
    side.redis.rename(side.queue, STAGED)

    suffix = uuid.uuid4().hex[:6]
    workers = [
        side.worker(base_url=simulator.base_url, threads=threads, index=index, suffix=suffix)
        for index in range(processes)
    ]
    with PeakConnections(side.database) as peak:
        try:
            for worker in workers:
                worker.wait_for_log("ready.", timeout=60)
            cpu_at_ready = sum(cpu_seconds(w.popen.pid) for w in workers)
            others_before = _others_cpu(simulator)
            side.redis.rename(STAGED, side.queue)
            _wait_until_finished(side, workers)
            cpu = sum(cpu_seconds(w.popen.pid) for w in workers) - cpu_at_ready
            others = {
                name: used - others_before[name] for name, used in _others_cpu(simulator).items()
            }
            rss = max(largest_rss_mb(w.popen.pid) for w in workers)
        finally:
            for worker in workers:
                worker.stop()

    first, last, done = side.outcome()
    elapsed = (last - first).total_seconds()
    return {
        "task": side.name,
        "pool": f"threads {processes}x{threads}",
        "jobs": jobs,
        "succeeded": done,
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed, 1),
        "ideal_jobs_per_s": round(processes * threads / (simulator.latency_ms / 1000), 1),
        "cpu_ms_per_job": round(cpu * 1000 / jobs, 2),
        # The rest of the machine's work for the same jobs (the cores are shared by all of it).
        **{f"{name}_cpu_ms_per_job": round(used * 1000 / jobs, 2) for name, used in others.items()},
        "rss_mb_per_process": round(rss, 1),
        "peak_pg_connections": peak.peak,
    }


def combined(runs: list[dict]) -> dict:
    """One row for several runs of the same side and shape: totals over them, so each run weighs
    by its jobs; RSS and connections are the largest seen."""
    jobs = sum(run["jobs"] for run in runs)
    seconds = sum(run["seconds"] for run in runs)
    per_job = [key for key in runs[0] if key.endswith("_ms_per_job")]
    return {
        **runs[0],
        "runs": len(runs),
        "jobs": jobs,
        "succeeded": sum(run["succeeded"] for run in runs),
        "seconds": round(seconds, 2),
        "jobs_per_s": round(jobs / seconds, 1),
        **{key: round(sum(run[key] * run["jobs"] for run in runs) / jobs, 2) for key in per_job},
        "rss_mb_per_process": max(run["rss_mb_per_process"] for run in runs),
        "peak_pg_connections": max(run["peak_pg_connections"] for run in runs),
    }


def _wait_until_finished(side: Side, workers: list[Process], stall: float = 60) -> None:
    # A task that fails leaves its row unfinished for good: give up once nothing has finished
    # for a minute, with the worker's account of why.
    left, progressed = None, time.monotonic()
    while left != 0:
        if (count := side.unfinished()) != left:
            left, progressed = count, time.monotonic()
        elif time.monotonic() - progressed > stall:
            raise RuntimeError(
                f"{side.name}: {left} jobs unfinished, none finished for {stall:g} s; "
                f"the first worker's log ends:\n{workers[0].log()[-3000:]}"
            )
        time.sleep(0.25)


def _others_cpu(simulator: Simulator) -> dict[str, float]:
    return {**store_cpu_seconds(), "simulator": cpu_seconds(simulator.popen.pid)}
