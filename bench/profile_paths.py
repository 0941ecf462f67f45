"""Where the time goes, in-process: the submit view and the worker's job path under cProfile.

Not a benchmark (no concurrency, the profiler's own overhead): a map of the hot paths for
make bench follow-ups. Prints ms per request and per job, then the top of each profile.

    .venv/bin/python -m bench.profile_paths [--requests 400] [--jobs 300]
"""

import argparse
import cProfile
import itertools
import pstats
import time
import uuid

from bench.common import prepare
from tests.processes import Simulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    workspace = prepare()
    simulator = Simulator(latency_ms=0)
    try:
        from django.conf import settings

        settings.OPENAI_BASE_URL = simulator.base_url  # the model client follows the settings
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


def profile_worker(workspace, jobs: int) -> None:
    from core.redis_client import get_redis
    from orchestrator import execution, services
    from orchestrator.models import Job

    Job.objects.filter(workspace=workspace).delete()
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
