"""Specification of the action sweeper: expired approvals, calls whose worker died (never resent
unless idempotent), approved actions whose message was lost."""

from datetime import timedelta

import pytest
from django.utils import timezone

from actions.models import Task
from actions.services import sweep_actions
from audit.models import ActionAudit
from tests.factories import make_job
from tests.helpers import queue_length

pytestmark = pytest.mark.django_db(transaction=True)

Status = ActionAudit.Status
MAIL = {"to": ["a@example.com"], "subject": "Hi", "body": "Hello"}


def executing_row(workspace, action: str, arguments: dict, **fields) -> ActionAudit:
    return ActionAudit.objects.create(
        workspace=workspace,
        job=make_job(workspace),
        call_key="1.0",
        action=action,
        arguments=arguments,
        status=Status.EXECUTING,
        **fields,
    )


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def test_live_send_started_before_the_lease_becomes_unknown_and_is_not_resent(workspace, settings):
    settings.ACTIONS_BACKEND = "live"
    settings.ACTION_LEASE_SECONDS = 60
    stale = executing_row(workspace, "gmail.send", MAIL, started_at=ago(61))
    running = executing_row(workspace, "gmail.send", MAIL, started_at=ago(30))

    counts = sweep_actions()

    assert counts["interrupted"] == 1
    stale.refresh_from_db()
    assert (stale.status, stale.reason) == (Status.UNKNOWN, "interrupted")
    assert "provider_message_id" not in stale.result  # no provider was called
    running.refresh_from_db()
    assert running.status == Status.EXECUTING  # positive control: still within its lease


def test_idempotent_action_started_before_the_lease_runs_to_its_outcome(workspace, settings):
    settings.ACTION_LEASE_SECONDS = 60
    row = executing_row(workspace, "task.create", {"title": "Again"}, started_at=ago(61))
    # The first run created the task before its worker died.
    Task.objects.create(workspace=workspace, idempotency_key=f"audit-{row.pk}", title="Again")

    sweep_actions()

    row.refresh_from_db()
    assert row.status == Status.EXECUTED
    assert row.result["created"] is False
    assert Task.objects.count() == 1


def test_approved_action_never_picked_up_is_republished(workspace, settings):
    settings.JOB_REQUEUE_AFTER_SECONDS = 60
    lost = executing_row(workspace, "task.create", {"title": "x"}, decided_at=ago(61))
    executing_row(workspace, "task.create", {"title": "y"}, decided_at=ago(10))

    assert sweep_actions()["republished"] == 1

    assert queue_length() == 1
    lost.refresh_from_db()
    assert lost.status == Status.EXECUTING and lost.started_at is None
