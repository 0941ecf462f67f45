"""Specification of human approval: what waits, who may decide, and that an approved action runs
once, through a real worker, after the policy is checked again."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import ProgrammingError, connection
from django.utils import timezone
from rest_framework.test import APIClient

from actions.models import Task
from actions.policy import WorkspacePolicy, arguments_hash
from actions.services import Proposal, run_proposed_action, sweep_actions
from audit.models import ActionAudit
from tests.factories import make_api_key, make_job
from tests.helpers import queue_length
from tests.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

Status = ActionAudit.Status
TASK = {"title": "Pay the invoice", "priority": "high"}
APPROVER_SCOPES = ["actions:approve"]


def propose(workspace, arguments: dict = TASK, action: str = "task_create") -> ActionAudit:
    """Run one proposal of a new job through the policy, as a worker does; return its row."""
    job = make_job(workspace)
    outcome = run_proposed_action(
        Proposal(
            job_id=job.id,
            workspace_id=workspace.id,
            call_key="1.0",
            tool_call_id="call_1",
            tool_name=action,
            raw_arguments=json.dumps(arguments),
        ),
        job_actions=job.allowed_actions,
        workspace=WorkspacePolicy.of(workspace),
    )
    return ActionAudit.objects.get(job=job, call_key=outcome.call_key)


@pytest.fixture
def approval_workspace(workspace):
    workspace.approval_required = ["task.create", "gmail.send"]
    workspace.save()
    return workspace


@pytest.fixture
def approver(approval_workspace, client_for) -> APIClient:
    return client_for(make_api_key(approval_workspace, scopes=APPROVER_SCOPES))


@pytest.fixture
def pending(approval_workspace) -> ActionAudit:
    row = propose(approval_workspace)
    assert row.status == Status.PENDING_APPROVAL, (row.status, row.reason)
    return row


def approve(client: APIClient, row: ActionAudit, hash_: str | None = None):
    body = {"arguments_hash": hash_ or row.arguments_hash}
    return client.post(f"/ai/actions/{row.pk}/approve", body, format="json")


def reload(row: ActionAudit) -> ActionAudit:
    return ActionAudit.objects.get(pk=row.pk)


def wait_for_action(row: ActionAudit, *, worker) -> ActionAudit:
    """Poll the audit row until it reaches a final status."""
    wait_until(
        lambda: reload(row).status in ActionAudit.FINAL_STATUSES,
        timeout=20,
        message=f"action {row.pk} never finished:\n{worker.log()[-3000:]}",
    )
    return reload(row)


# --- Waiting for a decision -------------------------------------------------------------------


def test_pending_action_stores_its_arguments_hash_and_a_24h_expiry(pending):
    assert pending.reason == pending.hold_reason == "approval_required"
    assert (pending.hold_details, pending.result, pending.decision) == ([], {}, "")
    assert pending.arguments_hash == arguments_hash(TASK)
    assert pending.expires_at - pending.created_at == timedelta(hours=24)
    assert pending.finished_at is None
    assert not Task.objects.exists()


def test_pending_actions_are_listed_newest_first(approver, pending, approval_workspace):
    newer = propose(approval_workspace, arguments={"title": "Newer"})
    body = approver.get("/ai/actions?status=pending_approval").json()

    assert [a["id"] for a in body["actions"]] == [newer.pk, pending.pk]
    first = body["actions"][1]
    assert (first["status"], first["reason"], first["action"]) == (
        "pending_approval",
        "approval_required",
        "task.create",
    )
    assert first["arguments"] == TASK
    assert first["arguments_hash"] == pending.arguments_hash
    # Positive control for the filter: another status lists nothing here.
    assert approver.get("/ai/actions?status=executed").json()["actions"] == []


def test_unknown_status_filter_is_a_400_in_the_error_format(approver, pending):
    response = approver.get("/ai/actions?status=bogus")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert "status" in response.json()["error"]["fields"]


# --- Approve ----------------------------------------------------------------------------------


def test_approved_action_runs_once_through_the_worker(approver, pending, worker):
    response = approve(approver, pending)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "executing"
    row = wait_for_action(pending, worker=worker)
    assert row.status == Status.EXECUTED, worker.log()[-3000:]
    assert row.decided_by.startswith("api-key:")
    assert row.decided_at is not None and row.started_at is not None
    task = Task.objects.get()
    # The result is the connector's outcome; the hold and the decision are still there.
    assert (task.title, row.result["task_id"]) == ("Pay the invoice", task.pk)
    assert (row.hold_reason, row.reason) == ("approval_required", "")
    assert (row.decision, row.approved_arguments_hash) == ("approve", pending.arguments_hash)


def approve_concurrently(client: APIClient, row: ActionAudit, count: int) -> list[int]:
    """`count` approvals of one row released together; their status codes, sorted."""
    barrier = threading.Barrier(count)
    statuses: list[int] = []

    def approve_once() -> None:
        barrier.wait()
        try:
            statuses.append(approve(client, row).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve_once) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_concurrent_approvals_run_the_action_once(approver, pending, worker):
    assert approve_concurrently(approver, pending, 6) == [200] + [409] * 5

    assert wait_for_action(pending, worker=worker).status == Status.EXECUTED
    assert Task.objects.count() == 1


def test_approval_naming_other_arguments_is_refused_and_changes_nothing(approver, pending):
    response = approve(approver, pending, arguments_hash({**TASK, "title": "Pay twice"}))

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "arguments_changed"
    assert reload(pending).status == Status.PENDING_APPROVAL
    assert queue_length() == 0
    # Positive control: the right hash is accepted.
    assert approve(approver, pending).status_code == 200
    assert queue_length() == 1


def test_arguments_changed_after_approval_are_refused_by_the_executor(
    approver, pending, start_worker_with
):
    assert approve(approver, pending).status_code == 200
    tampered = {**TASK, "title": "Other"}
    # The database refuses the change (the action_audit guard trigger)...
    with pytest.raises(ProgrammingError, match="what was proposed cannot be changed"):
        ActionAudit.objects.filter(pk=pending.pk).update(arguments=tampered)
    # ...and were it bypassed by someone able to disable triggers, the executor still refuses.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE action_audit DISABLE TRIGGER action_audit_guard")
        ActionAudit.objects.filter(pk=pending.pk).update(arguments=tampered)
        cursor.execute("ALTER TABLE action_audit ENABLE TRIGGER action_audit_guard")

    worker = start_worker_with()
    row = wait_for_action(pending, worker=worker)

    assert (row.status, row.reason) == (Status.REJECTED, "arguments_changed")
    assert not Task.objects.exists()


def test_kill_switch_flipped_while_the_action_waits_stops_it(approver, pending, start_worker_with):
    assert approve(approver, pending).status_code == 200

    worker = start_worker_with(ACTIONS_ENABLED="false")
    row = wait_for_action(pending, worker=worker)

    assert (row.status, row.reason) == (Status.SKIPPED, "actions_disabled")
    assert row.started_at is None  # the connector was never claimed
    assert not Task.objects.exists()


def test_expired_approval_cannot_be_approved(approver, pending):
    ActionAudit.objects.filter(pk=pending.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = approve(approver, pending)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "approval_expired"
    row = reload(pending)
    assert (row.status, row.reason, row.decided_by) == (Status.EXPIRED, "approval_expired", "")
    assert (row.hold_reason, row.decision) == ("approval_required", "")  # why it waited stays
    assert queue_length() == 0


def test_sweeper_expires_undecided_approvals_only(approval_workspace, pending):
    fresh = propose(approval_workspace, arguments={"title": "Still waiting"})
    ActionAudit.objects.filter(pk=pending.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert sweep_actions()["expired"] == 1

    assert reload(pending).status == Status.EXPIRED
    assert reload(fresh).status == Status.PENDING_APPROVAL


# --- Reject -----------------------------------------------------------------------------------


def test_rejected_action_never_runs_and_cannot_be_approved_after(approver, pending, worker):
    response = approver.post(f"/ai/actions/{pending.pk}/reject")

    assert response.status_code == 200, response.content
    row = reload(pending)
    assert (row.status, row.reason) == (Status.REJECTED, "rejected_by_reviewer")
    assert (row.hold_reason, row.decision) == ("approval_required", "reject")
    assert row.decided_by.startswith("api-key:") and row.decided_at is not None
    assert row.approved_arguments_hash == ""
    listed = approver.get("/ai/actions?status=rejected").json()["actions"][0]
    assert (listed["hold_reason"], listed["decision"]) == ("approval_required", "reject")
    again = approve(approver, pending)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "action_not_pending"
    assert queue_length() == 0
    assert not Task.objects.exists()


# --- Who may decide ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["approve", "reject"])
def test_other_workspace_action_is_404_like_an_unknown_id(
    route, pending, other_workspace, client_for
):
    outsider = client_for(make_api_key(other_workspace, scopes=APPROVER_SCOPES))
    body = {"arguments_hash": pending.arguments_hash}

    theirs = outsider.post(f"/ai/actions/{pending.pk}/{route}", body, format="json")
    unknown = outsider.post(f"/ai/actions/999999/{route}", body, format="json")
    malformed = outsider.post(f"/ai/actions/abc/{route}", body, format="json")

    assert theirs.status_code == unknown.status_code == malformed.status_code == 404
    assert theirs.json() == unknown.json() == malformed.json()
    assert reload(pending).status == Status.PENDING_APPROVAL
    assert outsider.get("/ai/actions").json()["actions"] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/ai/actions"),
        ("post", "/ai/actions/{id}/approve"),
        ("post", "/ai/actions/{id}/reject"),
    ],
)
def test_action_routes_need_the_actions_approve_scope(method, path, pending, api_client):
    response = getattr(api_client, method)(path.format(id=pending.pk), {}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert reload(pending).status == Status.PENDING_APPROVAL


def test_approval_without_an_arguments_hash_is_a_400(approver, pending):
    response = approver.post(f"/ai/actions/{pending.pk}/approve", {}, format="json")

    assert response.status_code == 400
    assert "arguments_hash" in response.json()["error"]["fields"]
    assert reload(pending).status == Status.PENDING_APPROVAL


# --- The trail keeps every reason -------------------------------------------------------------

OUTSIDE_MAIL = {
    "to": ["ann@acme.com"],
    "cc": ["eve@elsewhere.example"],
    "subject": "Quarterly numbers",
    "body": "Hello,\nthe numbers are attached.",
}


def test_held_mail_approved_keeps_why_it_was_held_and_records_the_send(
    approval_workspace, approver, worker
):
    approval_workspace.approval_required = []
    approval_workspace.recipient_domains = ["acme.com"]
    approval_workspace.save()
    row = propose(approval_workspace, arguments=OUTSIDE_MAIL, action="gmail_send")
    assert (row.status, row.hold_reason) == (
        Status.PENDING_APPROVAL,
        "recipient_outside_allowed_domains",
    )
    assert row.hold_details == ["not in an allowed domain: eve@elsewhere.example"]

    body = approve(approver, row).json()
    assert (body["hold_reason"], body["decision"]) == (
        "recipient_outside_allowed_domains",
        "approve",
    )
    assert body["approved_arguments_hash"] == row.arguments_hash

    done = wait_for_action(row, worker=worker)
    assert done.status == Status.EXECUTED, worker.log()[-3000:]
    assert done.hold_reason == "recipient_outside_allowed_domains"
    assert done.hold_details == ["not in an allowed domain: eve@elsewhere.example"]
    assert (done.decision, done.decided_by) == ("approve", body["decided_by"])
    # The provider's outcome (the sandbox's copy of the message), not an empty {}.
    assert done.result["message"]["cc"] == ["eve@elsewhere.example"]
    assert done.result["provider"] == "gmail"


def test_the_database_refuses_to_rewrite_a_hold_or_a_decision(approver, pending):
    with pytest.raises(ProgrammingError, match="why it was held cannot be changed"):
        ActionAudit.objects.filter(pk=pending.pk).update(hold_reason="nothing")
    assert approve(approver, pending).status_code == 200  # executing: still open, still guarded
    with pytest.raises(ProgrammingError, match="a decision cannot be changed"):
        ActionAudit.objects.filter(pk=pending.pk).update(decided_by="someone-else")
    with pytest.raises(ProgrammingError, match="a decision cannot be changed"):
        ActionAudit.objects.filter(pk=pending.pk).update(decision="reject")
    row = reload(pending)
    assert (row.hold_reason, row.decision) == ("approval_required", "approve")
    assert row.decided_by.startswith("api-key:")
