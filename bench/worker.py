"""End to end: N jobs through real worker processes against the simulator at a fixed latency.

Our job (claim, model call, stored plan, outcome) against the reference task (one model call and
one UPDATE) on the same pool, plus Celery's default prefork shape. Jobs/s run from the first
start to the last finish, read from the job rows.
"""

import time
import uuid

from django.db import connection
from django.db.models import Max, Min
from django.utils import timezone

from bench.common import PeakConnections, cpu_seconds, largest_rss_mb, store_cpu_seconds
from bench.reference import reference_job
from core import redis_keys
from core.redis_client import get_redis
from orchestrator import services
from orchestrator.models import Job, Workspace
from scripts.run_stack import worker_command
from tests.processes import Process, Simulator, process_env

STAGED = "bench:staged-jobs"


def run_worker_config(
    workspace: Workspace,
    simulator: Simulator,
    *,
    task: str,
    processes: int,
    pool: str,
    threads: int,
    jobs: int,
) -> dict:
    """Queue `jobs` jobs of one kind, then drain them with one worker configuration."""
    Job.objects.filter(workspace=workspace).delete()
    with connection.cursor() as cursor:  # every run starts from a table without dead rows
        cursor.execute(f"VACUUM ANALYZE {Job._meta.db_table}")
        # and with no dirty pages: writing out the last phase's would count as this run's.
        cursor.execute("CHECKPOINT")
    redis = get_redis()
    redis.flushdb()
    _enqueue(workspace, task, jobs)
    # The workers boot with nothing to take, so their start-up (imports, Django, connections)
    # is no part of a job's cost and all of them are ready when the jobs appear, at once.
    redis.rename(redis_keys.JOB_QUEUE, STAGED)

    workers = [_start_worker(simulator, pool, threads, index) for index in range(processes)]
    with PeakConnections() as peak:
        try:
            for worker in workers:
                worker.wait_for_log("ready.", timeout=60)
            cpu_at_ready = sum(cpu_seconds(w.popen.pid) for w in workers)
            others_before = _others_cpu(simulator)
            redis.rename(STAGED, redis_keys.JOB_QUEUE)
            _wait_until_finished(workspace, workers)
            cpu = sum(cpu_seconds(w.popen.pid) for w in workers) - cpu_at_ready
            others = {
                name: used - others_before[name] for name, used in _others_cpu(simulator).items()
            }
            rss = max(largest_rss_mb(w.popen.pid) for w in workers)
        finally:
            for worker in workers:
                worker.stop()

    rows = Job.objects.filter(workspace=workspace)
    span = rows.aggregate(first=Min("started_at"), last=Max("finished_at"))
    elapsed = (span["last"] - span["first"]).total_seconds()
    return {
        "task": task,
        "pool": f"{pool} {processes}x{threads}",
        "jobs": jobs,
        "succeeded": rows.filter(status=Job.Status.SUCCEEDED).count(),
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed, 1),
        "ideal_jobs_per_s": round(processes * threads / (simulator.latency_ms / 1000), 1),
        "cpu_ms_per_job": round(cpu * 1000 / jobs, 2),
        # The rest of the machine's work for the same jobs (2 cores shared by all of it).
        **{f"{name}_cpu_ms_per_job": round(used * 1000 / jobs, 2) for name, used in others.items()},
        "rss_mb_per_process": round(rss, 1),
        "peak_pg_connections": peak.peak,
    }


def combined(runs: list[dict]) -> dict:
    """One row for several runs of the same task and shape: totals over them, so each run weighs
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


def _wait_until_finished(workspace: Workspace, workers: list[Process], stall: float = 60) -> None:
    # A task that fails leaves its job unfinished for good: give up once nothing has finished
    # for a minute, with the worker's account of why.
    left, progressed = None, time.monotonic()
    unfinished = Job.objects.filter(workspace=workspace).exclude(status__in=Job.FINAL_STATUSES)
    while left != 0:
        if (count := unfinished.count()) != left:
            left, progressed = count, time.monotonic()
        elif time.monotonic() - progressed > stall:
            raise RuntimeError(
                f"{left} jobs unfinished, none finished for {stall:g} s; "
                f"the first worker's log ends:\n{workers[0].log()[-3000:]}"
            )
        time.sleep(0.25)


def _others_cpu(simulator: Simulator) -> dict[str, float]:
    return {**store_cpu_seconds(), "simulator": cpu_seconds(simulator.popen.pid)}


def _enqueue(workspace: Workspace, task: str, jobs: int) -> None:
    run = uuid.uuid4().hex[:8]
    if task == "ours":
        # Through the service, as over the API: stored, keyed, published after commit.
        for index in range(jobs):
            services.submit_job(
                workspace=workspace,
                client_request_id=f"bench-{run}-{index}",
                messages=[{"role": "user", "content": f"benchmark job {index}"}],
            )
        return
    created = Job.objects.bulk_create(
        Job(
            workspace=workspace,
            client_request_id=f"ref-{run}-{index}",
            request_fingerprint="",
            messages=[],
            model="gpt-4o-mini",
            max_output_tokens=800,
            created_at=timezone.now(),
        )
        for index in range(jobs)
    )
    for job in created:
        reference_job.apply_async(args=[str(job.id)])


def _start_worker(simulator: Simulator, pool: str, threads: int, index: int) -> Process:
    """The worker as make run ships it; prefork only for the comparison with Celery's default."""
    command = worker_command(f"bench-{index}-{uuid.uuid4().hex[:6]}@%h")
    if pool != "threads":
        command += ["--pool", pool, "--concurrency", str(threads)]
    return Process(
        f"bench-worker-{index}",
        command,
        process_env(
            OPENAI_BASE_URL=simulator.base_url,
            OPENAI_API_KEY="bench",
            WORKER_CONCURRENCY=str(threads),
        ),
    )
