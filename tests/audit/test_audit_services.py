"""Specification of the audit row's state machine: rows move only out of an open status, each
move a conditional UPDATE, so concurrent processes cannot both decide."""

import pytest
from django.utils import timezone

from audit import services as audit
from audit.models import ActionAudit
from tests.factories import make_job

Status = ActionAudit.Status


@pytest.fixture
def executing(workspace) -> ActionAudit:
    return ActionAudit.objects.create(
        workspace=workspace,
        job=make_job(workspace),
        call_key="1.0",
        action="gmail.send",
        arguments={},
        status=Status.EXECUTING,
    )


def test_a_refusal_never_overwrites_a_call_in_flight(executing):
    stale = ActionAudit.objects.get(pk=executing.pk)  # read before the claim
    assert audit.start_action(row=executing)

    refused = audit.finish_action(
        row=stale, status=Status.SKIPPED, reason="actions_disabled", result={}, before_start=True
    )

    assert refused is False
    assert ActionAudit.objects.get(pk=executing.pk).status == Status.EXECUTING
    # Positive control: the process that claimed the call records its outcome.
    assert audit.finish_action(row=executing, status=Status.EXECUTED, result={"id": 1})
    assert ActionAudit.objects.get(pk=executing.pk).status == Status.EXECUTED


def test_the_call_is_claimed_once(executing):
    other = ActionAudit.objects.get(pk=executing.pk)

    assert audit.start_action(row=executing) is True
    assert audit.start_action(row=other) is False


def test_a_final_row_never_changes_again(executing):
    assert audit.finish_action(row=executing, status=Status.FAILED, result={})

    assert not audit.finish_action(row=executing, status=Status.EXECUTED, result={})
    assert not audit.start_action(row=executing)
    assert not audit.decide_pending(
        row_id=executing.pk, decision=ActionAudit.Decision.REJECT, decided_by="x", reason="r"
    )
    row = ActionAudit.objects.get(pk=executing.pk)
    assert (row.status, row.decided_by) == (Status.FAILED, "")
    assert row.finished_at <= timezone.now()
