"""End-to-end specification of actions: what a real worker does with each tool call the model
proposes (policy, execution at most once, audit row, what the model is told)."""

import json
import uuid

import pytest

from actions.models import Task
from audit.models import ActionAudit
from orchestrator.models import Job
from tests.helpers import queue_length, submit, wait_for_job

pytestmark = pytest.mark.django_db(transaction=True)

Status = Job.Status
BUY_MILK = {"title": "Buy milk", "priority": "high"}
MAIL = {"to": ["a@example.com"], "subject": "Hi", "body": "Hello"}


def call(action: str, arguments: dict) -> str:
    """The simulator directive that makes the model propose one tool call."""
    return f"CALL {action} {json.dumps(arguments)}"


def submit_prompt(api_client, prompt: str, **fields) -> str:
    """Submit a prompt through the API; return the job id."""
    response = submit(
        api_client, client_request_id=f"act-{uuid.uuid4().hex[:12]}", prompt=prompt, **fields
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def run_prompt(api_client, prompt: str, **fields) -> Job:
    return wait_for_job(submit_prompt(api_client, prompt, **fields))


def explain(job: Job, worker) -> str:
    return f"{job.status} {job.error_code} {job.error_message}\n{worker.log()[-3000:]}"


# --- Executed ---------------------------------------------------------------------------------


def test_proposed_task_is_created_once_and_audited_as_executed(
    api_client, workspace, worker, simulator
):
    job = run_prompt(api_client, call("task.create", BUY_MILK))

    assert job.status == Status.SUCCEEDED, explain(job, worker)
    task = Task.objects.get()
    assert (task.title, task.priority, task.workspace_id) == ("Buy milk", "high", workspace.id)

    audit = ActionAudit.objects.get()
    assert audit.job_id == job.id
    assert audit.workspace_id == workspace.id
    assert (audit.call_key, audit.action, audit.status) == ("1.0", "task.create", "executed")
    assert audit.reason == ""
    assert audit.arguments == BUY_MILK
    assert audit.result["task_id"] == task.pk
    assert audit.finished_at is not None

    assert [
        (entry["call_key"], entry["tool"], json.loads(entry["arguments"]))
        for entry in job.tool_calls
    ] == [("1.0", "task_create", BUY_MILK)]
    # The simulator's final answer quotes the tool result it was given.
    assert "executed" in job.output_text
    assert job.usage["model_calls"] == 2
    assert simulator.requests() == 2

    body = api_client.get(f"/ai/jobs/{job.id}").json()
    assert body["actions"] == [
        {
            "id": audit.pk,
            "call_key": "1.0",
            "action": "task.create",
            "status": "executed",
            "reason": "",
            "result": audit.result,
        }
    ]


def test_gmail_send_records_in_the_sandbox_the_message_it_would_send(api_client, worker):
    job = run_prompt(api_client, call("gmail.send", MAIL))

    assert job.status == Status.SUCCEEDED, explain(job, worker)
    audit = ActionAudit.objects.get()
    assert (audit.action, audit.status, audit.arguments) == ("gmail.send", "executed", MAIL)
    assert audit.result["sandbox"] is True
    assert audit.result["delivered"] is False
    assert audit.result["message"] == {
        "to": ["a@example.com"],
        "cc": [],
        "bcc": [],
        "reply_to": None,
        "subject": "Hi",
        "body": "Hello",
        "html": None,
    }
    assert "executed" in job.output_text


# --- Refused by the policy --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "worker_env", "status", "reason"),
    [
        pytest.param(
            BUY_MILK, {"ACTIONS_ENABLED": "false"}, "skipped", "actions_disabled", id="kill-switch"
        ),
        pytest.param({"title": ""}, {}, "rejected", "invalid_arguments", id="empty-title"),
        pytest.param(
            {**BUY_MILK, "colour": "red"},
            {},
            "rejected",
            "invalid_arguments",
            id="unknown-property",
        ),
    ],
)
def test_refused_action_is_audited_and_has_no_effect(
    api_client, start_worker_with, arguments, worker_env, status, reason
):
    worker = start_worker_with(**worker_env)

    job = run_prompt(api_client, call("task.create", arguments))

    assert job.status == Status.SUCCEEDED, explain(job, worker)
    audit = ActionAudit.objects.get()
    assert (audit.call_key, audit.status, audit.reason) == ("1.0", status, reason)
    assert audit.arguments == arguments
    if status == "rejected":
        assert audit.result["errors"]
    assert not Task.objects.exists()
    assert status in job.output_text


def test_action_removed_from_the_workspace_after_submission_is_denied(
    api_client, workspace, start_worker_with
):
    job_id = submit_prompt(api_client, call("task.create", BUY_MILK))
    assert queue_length() == 1  # waiting for a worker, with task.create allowed at submission
    workspace.allowed_actions = ["gmail.send"]
    workspace.save()

    worker = start_worker_with()
    job = wait_for_job(job_id)

    assert job.status == Status.SUCCEEDED, explain(job, worker)
    assert "task.create" in job.allowed_actions
    audit = ActionAudit.objects.get()
    assert (audit.action, audit.status, audit.reason) == (
        "task.create",
        "denied",
        "action_not_allowed",
    )
    assert not Task.objects.exists()
    assert "denied" in job.output_text


# --- Waiting for a human --------------------------------------------------------------------


def test_mail_to_a_domain_outside_the_list_waits_and_the_model_is_told(
    api_client, workspace, worker
):
    workspace.recipient_domains = ["example.com"]
    workspace.save()
    outside = {**MAIL, "cc": ["eve@evil.example"]}

    job = run_prompt(api_client, call("gmail.send", outside))
    inside = run_prompt(api_client, call("gmail.send", MAIL))

    # The job does not wait for the decision: it finishes and its action shows its own status.
    assert job.status == Status.SUCCEEDED, explain(job, worker)
    audit = ActionAudit.objects.get(job=job)
    assert (audit.status, audit.reason) == ("pending_approval", "recipient_outside_allowed_domains")
    # Why it waits is the hold's, kept apart from the outcome (none yet).
    assert audit.hold_reason == "recipient_outside_allowed_domains"
    assert audit.hold_details == ["not in an allowed domain: eve@evil.example"]
    assert audit.result == {}
    assert audit.started_at is None
    assert "pending_approval" in job.output_text
    assert "eve@evil.example" in json.dumps(job.transcript)  # the model was told why
    body = api_client.get(f"/ai/jobs/{job.id}").json()
    assert body["actions"][0]["status"] == "pending_approval"
    # Positive control: the same mail to the listed domain only is sent (to the sandbox).
    assert inside.status == Status.SUCCEEDED, explain(inside, worker)
    assert ActionAudit.objects.get(job=inside).status == "executed"


# --- Never proposed or never run --------------------------------------------------------------


def test_tool_round_beyond_the_limit_fails_the_job_and_audits_the_proposal_as_denied(
    api_client, start_worker_with
):
    worker = start_worker_with(AI_MAX_TOOL_ROUNDS="0")

    job = run_prompt(api_client, call("task.create", BUY_MILK))

    assert job.status == Status.FAILED, explain(job, worker)
    assert job.error_code == "limit_exceeded"
    row = ActionAudit.objects.get(job=job)
    assert (row.action, row.status, row.reason) == ("task.create", "denied", "limit_exceeded")
    assert not Task.objects.exists()


def test_action_the_job_did_not_request_is_never_offered_to_the_model(
    api_client, worker, simulator
):
    job = run_prompt(api_client, call("task.create", BUY_MILK), actions=["gmail.send"])

    assert job.status == Status.SUCCEEDED, explain(job, worker)
    assert job.allowed_actions == ["gmail.send"]
    assert job.tool_calls == []
    assert not ActionAudit.objects.exists()
    assert not Task.objects.exists()
    assert simulator.requests() == 1
