"""Specification of how a real Celery worker runs a job: answer, retries, redeliveries, resumes."""

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from actions.models import Task
from audit.models import ActionAudit
from orchestrator import execution
from orchestrator.job_queue import publish_jobs
from orchestrator.models import Job
from tests.factories import make_job
from tests.helpers import queue_length, submit, wait_for_job
from tests.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

Status = Job.Status

# The model's reply stored before its tool call ran, exactly as the worker records it.
PLANNED_ARGUMENTS = '{"title":"From plan"}'
PLANNED_REPLY = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {
            "id": "call_x",
            "type": "function",
            "function": {"name": "task_create", "arguments": PLANNED_ARGUMENTS},
        }
    ],
}
PLANNED_TOOL_CALLS = [{"call_key": "1.0", "tool": "task_create", "arguments": PLANNED_ARGUMENTS}]


def run_prompt(api_client, prompt: str, *, statuses=Job.FINAL_STATUSES) -> Job:
    """Submit a prompt through the API and wait for its job to reach one of `statuses`."""
    response = submit(api_client, client_request_id=f"exec-{uuid.uuid4().hex[:12]}", prompt=prompt)
    assert response.status_code == 202, response.content
    return wait_for_job(response.json()["id"], statuses=statuses)


def explain(job: Job, worker) -> str:
    return f"{job.status} {job.error_code} {job.error_message}\n{worker.log()[-3000:]}"


def finished_deliveries(worker) -> int:
    """How many run_job messages the worker has finished (each delivery logs one line)."""
    return len(re.findall(r"orchestrator\.tasks\.run_job\[[^\]]+\] succeeded", worker.log()))


def wait_for_deliveries(worker, count: int) -> None:
    """Wait until the queue is drained and the worker has finished `count` run_job messages."""
    wait_until(
        lambda: queue_length() == 0 and finished_deliveries(worker) >= count,
        timeout=15,
        message=f"the worker never finished {count} deliveries:\n{worker.log()[-3000:]}",
    )


@pytest.fixture
def planned_job(workspace):
    """A queued job whose stored plan holds one task_create call that has not run yet."""
    return make_job(
        workspace,
        status=Status.QUEUED,
        transcript=[PLANNED_REPLY],
        tool_calls=PLANNED_TOOL_CALLS,
    )


# --- Answering --------------------------------------------------------------------------------


def test_prompt_job_succeeds_with_the_model_answer_and_usage(api_client, worker, simulator):
    job = run_prompt(api_client, "Say hello")

    assert job.status == Status.SUCCEEDED, explain(job, worker)
    assert job.output_text.startswith("Simulated answer")
    assert "Say hello" in job.output_text
    assert job.usage["prompt_tokens"] > 0
    assert job.usage["completion_tokens"] > 0
    assert job.usage["total_tokens"] == job.usage["prompt_tokens"] + job.usage["completion_tokens"]
    assert job.usage["model_calls"] == 1
    assert job.started_at is not None
    assert job.finished_at is not None
    assert job.started_at <= job.finished_at
    assert job.attempts == 1
    assert job.error_code == ""
    assert simulator.requests() == 1

    body = api_client.get(f"/ai/jobs/{job.id}").json()
    assert body["status"] == "succeeded"
    assert body["output_text"] == job.output_text
    assert body["usage"] == job.usage
    assert body["attempts"] == 1
    assert body["error"] is None
    assert body["started_at"] is not None
    assert body["finished_at"] is not None


# --- Redelivery -------------------------------------------------------------------------------


def test_redelivered_message_of_a_finished_job_changes_nothing(api_client, worker, simulator):
    job = run_prompt(api_client, "Say hello")
    assert job.status == Status.SUCCEEDED, explain(job, worker)
    wait_for_deliveries(worker, 1)

    publish_jobs([job.id])
    wait_for_deliveries(worker, 2)

    again = Job.objects.get(pk=job.id)
    assert again.status == Status.SUCCEEDED
    assert again.finished_at == job.finished_at
    assert again.output_text == job.output_text
    assert again.usage == job.usage
    assert again.attempts == 1
    assert simulator.requests() == 1


def test_message_delivered_again_while_the_job_runs_is_ignored(api_client, worker, simulator):
    running = run_prompt(api_client, "SLEEP 2000", statuses=(Status.RUNNING,))

    publish_jobs([running.id])
    # The first delivery is still waiting for the model, so the first to finish is the second.
    wait_until(lambda: finished_deliveries(worker) >= 1, timeout=5, message=worker.log()[-3000:])
    assert Job.objects.get(pk=running.id).status == Status.RUNNING
    job = wait_for_job(running.id)
    wait_for_deliveries(worker, 2)

    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, explain(job, worker)
    assert job.attempts == 1
    assert job.usage["model_calls"] == 1
    assert simulator.requests() == 1


# --- Model failures ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429])
def test_transient_model_failure_is_retried_until_the_job_succeeds(
    api_client, worker, simulator, status
):
    job = run_prompt(api_client, f"FAIL {status} 1")

    assert job.status == Status.SUCCEEDED, explain(job, worker)
    assert job.attempts == 2
    assert job.error_code == ""
    assert simulator.requests() == 2


def test_permanent_model_failure_fails_the_job_at_once(api_client, worker, simulator):
    job = run_prompt(api_client, "FAIL 400 1")

    assert job.status == Status.FAILED, explain(job, worker)
    assert job.error_code == "model_error"
    assert "400" in job.error_message
    assert job.attempts == 1
    assert job.finished_at is not None
    assert simulator.requests() == 1


def test_persistent_unavailability_fails_the_job_after_max_attempts(
    api_client, start_worker_with, simulator
):
    worker = start_worker_with(JOB_MAX_ATTEMPTS="2")

    job = run_prompt(api_client, "FAIL 503 10")

    assert job.status == Status.FAILED, explain(job, worker)
    assert job.error_code == "model_unavailable"
    assert job.attempts == 2
    assert job.finished_at is not None
    assert simulator.requests() == 2


# --- Resuming from the stored plan ------------------------------------------------------------


def test_job_resumes_from_its_stored_plan_without_asking_the_model_again(
    planned_job, workspace, worker, simulator
):
    publish_jobs([planned_job.id])
    job = wait_for_job(planned_job.id)

    assert job.status == Status.SUCCEEDED, explain(job, worker)
    task = Task.objects.get()
    assert (task.title, task.workspace_id) == ("From plan", workspace.id)
    audit = ActionAudit.objects.get(job=job)
    assert (audit.call_key, audit.action, audit.status) == ("1.0", "task.create", "executed")
    assert audit.result["task_id"] == task.pk
    assert job.tool_calls == PLANNED_TOOL_CALLS
    assert "executed" in job.output_text
    # Only the final answer was asked for: the plan came from the row, not from the model.
    assert job.usage["model_calls"] == 1
    assert simulator.requests() == 1


def test_step_already_executed_before_a_crash_is_not_executed_again(
    planned_job, workspace, worker, simulator
):
    # The first delivery ran the action, recorded its outcome, then died before saving the
    # tool result in the job.
    audit = ActionAudit.objects.create(
        workspace=workspace,
        job=planned_job,
        call_key="1.0",
        action="task.create",
        arguments={"title": "From plan"},
        status=ActionAudit.Status.EXECUTING,
    )
    task = Task.objects.create(
        workspace=workspace, idempotency_key=f"audit-{audit.pk}", title="From plan"
    )
    # One move to the outcome: the audit trigger refuses any later change of a final row.
    ActionAudit.objects.filter(pk=audit.pk).update(
        status=ActionAudit.Status.EXECUTED,
        result={"task_id": task.pk, "title": task.title, "created": True},
        finished_at=timezone.now(),
    )

    publish_jobs([planned_job.id])
    job = wait_for_job(planned_job.id)

    assert job.status == Status.SUCCEEDED, explain(job, worker)
    assert list(Task.objects.values_list("pk", flat=True)) == [task.pk]
    assert list(ActionAudit.objects.filter(job=job).values_list("pk", "status")) == [
        (audit.pk, "executed")
    ]
    assert "executed" in job.output_text
    assert simulator.requests() == 1


def test_a_step_that_fails_unexpectedly_fails_alone_and_the_job_goes_on(
    workspace, worker, simulator
):
    # A stored plan whose arguments are not text (a model can send an object; a bug can store
    # anything): reading the step breaks, the action is recorded failed, the next step runs.
    broken = {"id": "call_a", "type": "function", "function": {"name": "task_create"}}
    broken["function"]["arguments"] = 12345
    valid = {
        "id": "call_b",
        "type": "function",
        "function": {"name": "task_create", "arguments": PLANNED_ARGUMENTS},
    }
    job = make_job(
        workspace,
        status=Status.QUEUED,
        transcript=[{"role": "assistant", "content": None, "tool_calls": [broken, valid]}],
    )

    publish_jobs([job.id])
    job = wait_for_job(job.id)

    assert job.status == Status.SUCCEEDED, explain(job, worker)
    rows = ActionAudit.objects.filter(job=job).order_by("call_key")
    assert [(r.call_key, r.status, r.reason) for r in rows] == [
        ("1.0", "failed", "internal_error"),
        ("1.1", "executed", ""),
    ]
    assert rows[0].arguments == {"raw": "12345"}
    assert list(Task.objects.values_list("title", flat=True)) == ["From plan"]


def test_a_job_that_fails_unexpectedly_ends_failed_instead_of_running_forever(
    workspace, worker, simulator
):
    # A stored plan no code path can read (a tool call without its function).
    job = make_job(
        workspace,
        status=Status.QUEUED,
        transcript=[{"role": "assistant", "content": None, "tool_calls": [{"id": "call_a"}]}],
    )

    publish_jobs([job.id])
    job = wait_for_job(job.id, timeout=15)

    assert (job.status, job.error_code) == (Status.FAILED, "internal_error"), explain(job, worker)
    assert "KeyError" in job.error_message
    assert job.finished_at is not None and job.lease_expires_at is None
    assert job.attempts == 1  # ended on its first delivery, not after the sweeper's rounds


# --- Lost workers -----------------------------------------------------------------------------


def test_job_whose_lease_expired_is_handed_back_and_run(workspace, start_worker_with, simulator):
    now = timezone.now()
    abandoned = make_job(
        workspace,
        status=Status.RUNNING,
        attempts=1,
        started_at=now - timedelta(minutes=10),
        lease_expires_at=now - timedelta(seconds=1),
    )

    worker = start_worker_with(beat=True, SWEEP_INTERVAL_SECONDS="1")
    job = wait_for_job(abandoned.id, timeout=20)

    assert job.status == Status.SUCCEEDED, explain(job, worker)
    assert job.attempts == 2
    assert job.output_text.startswith("Simulated answer")
    assert simulator.requests() == 1


@pytest.mark.parametrize(
    ("status", "renewed"),
    [(Status.RUNNING, True), (Status.CANCELLED, False), (Status.QUEUED, False)],
)
def test_only_a_job_still_running_has_its_lease_renewed(workspace, settings, status, renewed):
    # Before each action: a slow send must not let the sweeper hand the job away, and a job
    # cancelled or handed back meanwhile must not be taken again by the worker that had it.
    soon = timezone.now() + timedelta(seconds=1)
    job = make_job(workspace, status=status, lease_expires_at=soon)

    assert execution._renew_lease(job) is renewed

    lease = Job.objects.get(pk=job.pk).lease_expires_at
    if renewed:
        assert lease >= timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS - 5)
    else:
        assert lease == soon
