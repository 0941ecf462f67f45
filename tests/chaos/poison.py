"""Loaded into the poison scenario's worker (`celery worker --include tests.chaos.poison`): a
job whose metadata holds {"chaos": "poison"} kills the worker process that claimed it, as a
job that crashes its interpreter (a native library's fault, the OOM killer) would.

Only after the claim, as a real crash comes while the job runs: the claim counts the attempt,
which is what bounds the job's deliveries.
"""

import os
import signal
import threading
import time

from celery.signals import task_prerun

RUN_JOB = "orchestrator.tasks.run_job"
# Time enough for the jobs claimed alongside (each well under a second) to finish first.
KILL_AFTER_CLAIM_SECONDS = 1.0


@task_prerun.connect
def arm(sender=None, args=None, **kwargs) -> None:
    if getattr(sender, "name", "") == RUN_JOB and args:
        threading.Thread(target=_kill_if_poison_claimed, args=(args[0],), daemon=True).start()


def _kill_if_poison_claimed(job_id: str) -> None:
    from django.db import connection

    from orchestrator.models import Job

    try:
        row = Job.objects.filter(pk=job_id).values("metadata", "status", "attempts").first()
        if not row or row["metadata"].get("chaos") != "poison" or row["status"] != "queued":
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            now = Job.objects.filter(pk=job_id).values("status", "attempts").first()
            if now and now["status"] == "running" and now["attempts"] > row["attempts"]:
                time.sleep(KILL_AFTER_CLAIM_SECONDS)
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.05)
    finally:
        connection.close()
