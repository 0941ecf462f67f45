"""POST /ai/jobs/{id}/cancel: stored in PostgreSQL, so no worker, restart or late message runs a
cancelled job; a running job stops at its next step."""

import json
import uuid

import pytest

from actions.models import Task
from audit.models import ActionAudit
from orchestrator.models import Job
from tests import factories
from tests.helpers import submit, wait_for_job

Status = Job.Status


def cancel(client, job_id):
    return client.post(f"/ai/jobs/{job_id}/cancel")


def task_prompt(sleep_ms: int) -> str:
    """A model that takes sleep_ms per answer and first proposes creating a task."""
    arguments = json.dumps({"title": "Buy milk"})
    return f"SLEEP {sleep_ms}\nCALL task.create {arguments}"


@pytest.mark.django_db
def test_queued_job_becomes_cancelled_with_the_time_of_the_request(api_client, workspace):
    job = factories.make_job(workspace)

    response = cancel(api_client, job.id)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["cancel_requested_at"] is not None
    assert body["error"]["code"] == "cancelled"
    job.refresh_from_db()
    assert job.status == Status.CANCELLED and job.finished_at is not None


@pytest.mark.django_db
def test_cancelling_twice_answers_the_same_and_keeps_the_first_request(api_client, workspace):
    job = factories.make_job(workspace)
    first = cancel(api_client, job.id).json()

    second = cancel(api_client, job.id)

    assert second.status_code == 200
    assert second.json()["cancel_requested_at"] == first["cancel_requested_at"]
    assert second.json()["finished_at"] == first["finished_at"]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED])
def test_finished_job_is_409_and_unchanged(api_client, workspace, status):
    job = factories.make_job(workspace, status=status, output_text="done")
    before = Job.objects.filter(pk=job.pk).values().get()

    response = cancel(api_client, job.id)

    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "job_finished"
    assert Job.objects.filter(pk=job.pk).values().get() == before


@pytest.mark.django_db
def test_another_workspaces_job_is_404_and_untouched(api_client, other_workspace):
    theirs = factories.make_job(other_workspace)

    response = cancel(api_client, theirs.id)
    unknown = cancel(api_client, uuid.uuid4())

    assert response.status_code == 404
    assert response.json() == unknown.json()
    theirs.refresh_from_db()
    assert theirs.status == Status.QUEUED


@pytest.mark.django_db
def test_cancel_needs_the_write_scope(client_for, workspace):
    job = factories.make_job(workspace)
    reader = client_for(factories.make_api_key(workspace, scopes=["jobs:read"]))

    assert cancel(reader, job.id).status_code == 403
    job.refresh_from_db()
    assert job.status == Status.QUEUED


# --- With a real worker -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_cancelled_job_whose_message_is_delivered_later_never_calls_the_model(
    api_client, start_worker_with, simulator
):
    cancelled_id = submit(api_client, client_request_id="c-1", prompt="never run").json()["id"]
    control_id = submit(api_client, client_request_id="c-2", prompt="run me").json()["id"]
    assert cancel(api_client, cancelled_id).status_code == 200

    worker = start_worker_with()  # both messages were waiting in the queue
    control = wait_for_job(control_id)
    worker.wait_for_log(f"{cancelled_id} is not queued", timeout=10)

    assert control.status == Status.SUCCEEDED, worker.log()[-2000:]  # positive control
    assert Job.objects.get(pk=cancelled_id).status == Status.CANCELLED
    assert simulator.requests() == 1  # the control's only


@pytest.mark.django_db(transaction=True)
def test_running_job_stops_at_its_next_step_without_further_model_call_or_action(
    api_client, worker, simulator
):
    job_id = submit(api_client, client_request_id="r-1", prompt=task_prompt(1500)).json()["id"]
    wait_for_job(job_id, statuses=[Status.RUNNING])

    response = cancel(api_client, job_id)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    # The model's first answer (a proposed task) arrives after the cancel, and is not acted on.
    worker.wait_for_log(f"job {job_id} is no longer running", timeout=20)

    assert Job.objects.get(pk=job_id).status == Status.CANCELLED
    assert simulator.requests() == 1
    assert not Task.objects.exists()
    assert not ActionAudit.objects.exists()

    # Positive control: the same prompt, not cancelled, creates its task and asks again.
    control = submit(api_client, client_request_id="r-2", prompt=task_prompt(10)).json()["id"]
    assert wait_for_job(control).status == Status.SUCCEEDED
    assert Task.objects.count() == 1
    assert simulator.requests() == 3
