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
from datetime import datetime

from celery.signals import task_prerun

RUN_JOB = "orchestrator.tasks.run_job"
# Time enough for the jobs claimed alongside (each well under a second) to finish first.
KILL_AFTER_CLAIM_SECONDS = 1.0


@task_prerun.connect
def arm(sender=None, args=None, **kwargs) -> None:
    if getattr(sender, "name", "") == RUN_JOB and args:
        from django.utils import timezone

        # Before the task body runs, so before its claim: the claim's started_at is later.
        armed_at = timezone.now()
        threading.Thread(
            target=_kill_if_poison_claimed, args=(args[0], armed_at), daemon=True
        ).start()


def _kill_if_poison_claimed(job_id: str, armed_at: datetime) -> None:
    from django.db import connection

    from orchestrator.models import Job

    try:
        row = Job.objects.filter(pk=job_id).values("metadata").first()
        if not row or row["metadata"].get("chaos") != "poison":
            return
        # This delivery's claim, however fast it was: running, started after this task was
        # armed. A row still running from an earlier, killed delivery started before.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            now = Job.objects.filter(pk=job_id).values("status", "started_at").first()
            if now and now["status"] == "running" and now["started_at"] >= armed_at:
                time.sleep(KILL_AFTER_CLAIM_SECONDS)
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.05)
    finally:
        connection.close()
