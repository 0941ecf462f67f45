"""Where the time goes, in-process: the submit view and the worker's job path under cProfile.

Not a benchmark (no concurrency, the profiler's own overhead): a map of the hot paths for
make bench follow-ups. Prints ms per request and per job, then the top of each profile.
`--parts` instead prints the CPU time of each step of POST /ai/jobs and of a job, each called on
its own, beside the whole request and the whole job: what each step costs.

    .venv/bin/python -m bench.profile_paths [--requests 400] [--jobs 300] [--parts]
"""

import argparse
import cProfile
import itertools
import logging
import pstats
import time
import uuid
from collections.abc import Iterator

from bench.common import clear_jobs, prepare
from tests.processes import Simulator

BULK = 100  # messages a relay would publish at once in the bulk rows of --parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--parts", action="store_true", help="CPU of each step, not profiles")
    args = parser.parse_args()
    workspace = prepare()
    simulator = Simulator(latency_ms=0)
    try:
        from django.conf import settings

        settings.OPENAI_BASE_URL = simulator.base_url  # the model client follows the settings
        if args.parts:
            submit_parts(workspace, args.requests)
            job_parts(workspace, args.jobs)
            return
        profile_submit(workspace, args.requests)
        profile_worker(workspace, args.jobs)
    finally:
        simulator.stop()


def profile_submit(workspace, requests: int) -> None:
    from django.conf import settings
    from django.test import Client

    from core.redis_client import get_redis
    from orchestrator.api_keys import issue_api_key

    key = issue_api_key(workspace=workspace, scopes=["jobs:write"], name="profile").plaintext
    client = Client(SERVER_NAME="localhost", HTTP_AUTHORIZATION=f"Bearer {key}")
    run, counter = uuid.uuid4().hex[:8], itertools.count()

    def post(count: int, path: str) -> float:
        started = time.perf_counter()
        for _ in range(count):
            body = f'{{"client_request_id": "p-{run}-{next(counter)}", "prompt": "hello"}}'
            response = client.post(path, body, content_type="application/json")
            assert response.status_code == 202, response.content
        return (time.perf_counter() - started) * 1000 / count

    settings.ALLOWED_HOSTS = ["localhost"]
    post(50, "/ai/jobs")  # warm up: imports, pools, caches
    # The bare project runs in processes of its own (make bench); here only ours, in-process.
    print(f"submit: {post(requests, '/ai/jobs'):.2f} ms/request")
    profiler = cProfile.Profile()
    profiler.runcall(post, requests, "/ai/jobs")
    get_redis().flushdb()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"orchestrator/|apply_async", 25)


def submit_parts(workspace, calls: int) -> None:
    """CPU ms per call of each step of POST /ai/jobs, alone, then of the whole request."""
    from celery import current_app
    from django.conf import settings
    from django.test import Client

    from core.redis_client import get_redis
    from orchestrator import job_queue, lifecycle, rate_limits, services
    from orchestrator.api.serializers import JobCreateSerializer, JobSerializer
    from orchestrator.api_keys import authenticate_api_key, issue_api_key

    key = issue_api_key(workspace=workspace, scopes=["jobs:write"], name="parts").plaintext
    run, counter = uuid.uuid4().hex[:8], itertools.count()
    messages = [{"role": "user", "content": "hello"}]

    def request_id() -> str:
        return f"parts-{run}-{next(counter)}"

    def create():
        return lifecycle.create(
            id=uuid.uuid4(),
            workspace=workspace,
            client_request_id=request_id(),
            request_fingerprint="0" * 64,
            messages=messages,
            model=settings.AI_MODEL,
            max_output_tokens=settings.AI_MAX_OUTPUT_TOKENS,
            allowed_actions=[],
        )

    job = create()
    bulk = [create().id for _ in range(BULK)]

    def publish_batched(job_ids: list) -> None:
        # kombu's public batch: the messages are buffered and pushed in one pipeline.
        with current_app.producer_or_acquire() as producer, producer.batch():
            for job_id in job_ids:
                current_app.send_task(job_queue.RUN_JOB, args=[str(job_id)], producer=producer)

    settings.ALLOWED_HOSTS = ["localhost"]
    client = Client(SERVER_NAME="localhost", HTTP_AUTHORIZATION=f"Bearer {key}")
    body = '{{"client_request_id": "{}", "prompt": "hello"}}'
    steps = {
        "validate the body (JobCreateSerializer)": lambda: JobCreateSerializer(
            data={"client_request_id": request_id(), "prompt": "hello"}
        ).is_valid(raise_exception=True),
        "authenticate the key (cached)": lambda: authenticate_api_key(key),
        "rate limit + idempotency reservation": lambda: rate_limits.hit_workspace_limit(
            workspace=workspace, reserve=(request_id(), str(job.id))
        ),
        "request fingerprint": lambda: services._fingerprint(messages=messages, actions=None),
        "INSERT the job (lifecycle.create)": create,
        "publish the job (send_task)": lambda: job_queue.publish_jobs([job.id]),
        # What a relay draining an outbox would pay per job: the same messages, many at once.
        f"publish {BULK} jobs, one producer, a job": lambda: job_queue.publish_jobs(bulk),
        f"publish {BULK} jobs, Producer.batch(), a job": lambda: publish_batched(bulk),
        "render the 202 body (JobSerializer)": lambda: (
            JobSerializer(job, context={"actions": []}).data
        ),
        "whole POST /ai/jobs (Django test client)": lambda: client.post(
            "/ai/jobs", body.format(request_id()), content_type="application/json"
        ),
    }
    print(f"submit, CPU ms a call ({calls} calls each, after 50 to warm up)")
    for name, step in steps.items():
        # The bulk publishes send BULK messages a call: fewer calls, and the figure is a job's.
        per_call = BULK if name.startswith(f"publish {BULK}") else 1
        for _ in range(max(50 // per_call, 1)):
            step()
        started = time.process_time()
        for _ in range(max(calls // per_call, 1)):
            step()
        elapsed = time.process_time() - started
        print(f"  {name:44} {elapsed * 1000 / (max(calls // per_call, 1) * per_call):6.3f}")
        get_redis().flushdb()  # the queue would otherwise hold every message published here


def job_parts(workspace, jobs: int) -> None:
    """CPU ms per call of each step of a job (model at 0 ms), alone, then of the whole job.

    As in a worker process, metrics are summed and written by a thread every
    WORKER_FLUSH_SECONDS; unlike one, INFO lines are off (a worker writes one a job, and Celery
    two more), so that the figures are not lost among a thousand lines.
    """
    from django.conf import settings
    from django.db import connections
    from django.utils import timezone

    from actions.registry import tools_for
    from core import metrics
    from orchestrator import execution, lifecycle, model_client
    from orchestrator.models import Job

    metrics.coalesce_writes(metrics.WORKER_FLUSH_SECONDS)
    logging.disable(logging.INFO)

    clear_jobs(workspace)
    messages = [{"role": "user", "content": "benchmark job"}]
    tools = tools_for(workspace.effective_allowed_actions)
    warm_up = 50

    def queued() -> Iterator[Job]:
        for _ in range(jobs + warm_up):
            yield lifecycle.create(
                workspace=workspace,
                client_request_id=f"parts-{uuid.uuid4().hex}",
                request_fingerprint="0" * 64,
                messages=messages,
                model=settings.AI_MODEL,
                max_output_tokens=settings.AI_MAX_OUTPUT_TOKENS,
                allowed_actions=workspace.effective_allowed_actions,
            )

    def ask(offered: list[dict]):
        return model_client.complete_chat(
            model=settings.AI_MODEL, messages=messages, tools=offered, max_tokens=100
        )

    def each(step, items: list) -> float:
        for item in items[:warm_up]:
            step(item)
        started = time.process_time()
        for item in items[warm_up:]:
            step(item)
        return (time.process_time() - started) * 1000 / (len(items) - warm_up)

    now = timezone.now()
    to_claim = [job.pk for job in queued()]
    # Each checkout from the pool as in a worker, where the thread gives its connection back
    # before the model call: the pool's health check and Django's set-up are part of the step.
    figures = {
        "claim (lifecycle.claim)": each(
            lambda pk: (
                lifecycle.claim(pk, now=now, lease_expires_at=now),
                connections.close_all(),
            ),
            to_claim,
        ),
        "finish (lifecycle.move to succeeded)": each(
            lambda pk: (
                lifecycle.move(pk, source=Job.Status.RUNNING, target=Job.Status.SUCCEEDED),
                connections.close_all(),
            ),
            to_claim,
        ),
        "model call, no tools (openai SDK)": each(lambda _: ask([]), to_claim),
        f"model call, {len(tools)} tools offered": each(lambda _: ask(tools), to_claim),
        "whole job (execution.execute_job)": each(
            lambda job: execution.execute_job(job_id=str(job.pk)), list(queued())
        ),
    }
    print(f"job, CPU ms a call ({jobs} calls each, after {warm_up} to warm up; model at 0 ms)")
    for name, figure in figures.items():
        print(f"  {name:44} {figure:6.3f}")


def profile_worker(workspace, jobs: int) -> None:
    from core.redis_client import get_redis
    from orchestrator import execution, services

    clear_jobs(workspace)
    ids = [
        str(
            services.submit_job(
                workspace=workspace,
                client_request_id=f"w-{uuid.uuid4().hex}",
                messages=[{"role": "user", "content": "hi"}],
            ).job.id
        )
        for _ in range(2 * jobs + 50)
    ]
    get_redis().flushdb()  # no worker runs: the jobs are executed here, one by one
    for job_id in ids[:50]:
        execution.execute_job(job_id=job_id)
    started = time.perf_counter()
    for job_id in ids[50 : 50 + jobs]:
        execution.execute_job(job_id=job_id)
    print(f"worker: {(time.perf_counter() - started) * 1000 / jobs:.2f} ms/job (model at 0 ms)")
    profiler = cProfile.Profile()
    for job_id in ids[50 + jobs :]:
        profiler.runcall(execution.execute_job, job_id=job_id)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"orchestrator/|actions/", 25)


if __name__ == "__main__":
    main()
