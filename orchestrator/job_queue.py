"""Job messages: one run_job message per job on ai:queue:pending, naming the job id only.

The worker re-reads everything else from PostgreSQL. Published through core.publish (Celery's
send_task), like every other message; orchestrator.signals counts what was published.
"""

from collections.abc import Iterable
from uuid import UUID

from core.publish import context_headers, publish, publish_each_on_commit

RUN_JOB = "orchestrator.tasks.run_job"


def publish_jobs(job_ids: Iterable[UUID | str]) -> None:
    """Publish a message for each job now, in the order given.

    Raises kombu's OperationalError when the broker is unreachable.
    """
    publish(RUN_JOB, [[str(job_id)] for job_id in job_ids], headers=context_headers())


def publish_jobs_on_commit(job_ids: Iterable[UUID | str]) -> None:
    """Publish a message for each job once the current transaction commits; robust (see
    core.publish): a job whose message never left is the sweeper's."""
    publish_each_on_commit(RUN_JOB, [[str(job_id)] for job_id in job_ids])
