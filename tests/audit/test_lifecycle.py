"""Specification of an action audit row's statuses: only the listed moves happen, each once."""

import pytest

from audit import lifecycle
from audit import services as audit
from audit.models import ActionAudit
from core.transitions import TransitionRefused
from tests.factories import make_audit, make_job

Status = ActionAudit.Status
REFUSED = {Status.SKIPPED, Status.DENIED, Status.REJECTED}

# An executing row's call is claimed (executing -> executing) and ends in its outcome, or the
# policy re-checked before the call refuses it or holds it for a human. A held row is approved
# (-> executing), rejected or expires. Final rows never move.
EXPECTED = {
    Status.EXECUTING: {
        Status.EXECUTING,
        Status.EXECUTED,
        Status.FAILED,
        Status.UNKNOWN,
        Status.PENDING_APPROVAL,
        *REFUSED,
    },
    Status.PENDING_APPROVAL: {Status.EXECUTING, Status.REJECTED, Status.EXPIRED},
    **{status: set() for status in ActionAudit.FINAL_STATUSES},
}
EXPECTED_INITIAL = {Status.EXECUTING, Status.PENDING_APPROVAL, Status.FAILED, *REFUSED}
PAIRS = [(source, target) for source in Status for target in Status]
ALLOWED_MOVES = [(s, t) for s, t in PAIRS if t in EXPECTED[s]]
FORBIDDEN_MOVES = [(s, t) for s, t in PAIRS if t not in EXPECTED[s]]


@pytest.fixture
def job(workspace):
    return make_job(workspace)


def test_the_table_holds_exactly_the_moves_the_action_paths_make():
    assert {source: set(targets) for source, targets in lifecycle.ALLOWED.items()} == EXPECTED
    assert set(lifecycle.INITIAL) == EXPECTED_INITIAL


@pytest.mark.parametrize(("source", "target"), ALLOWED_MOVES)
def test_an_allowed_move_happens_once(job, source, target):
    row = make_audit(job, status=source)

    assert lifecycle.move(row.pk, source=source, target=target, reason="moved") is True

    stored = ActionAudit.objects.get(pk=row.pk)
    assert (stored.status, stored.reason) == (target, "moved")
    if source != target:
        assert lifecycle.move(row.pk, source=source, target=target, reason="again") is False
        assert ActionAudit.objects.get(pk=row.pk).reason == "moved"


@pytest.mark.parametrize(("source", "target"), FORBIDDEN_MOVES)
def test_a_forbidden_move_is_refused_and_changes_nothing(job, source, target):
    row = make_audit(job, status=source)

    with pytest.raises(TransitionRefused):
        lifecycle.move(row.pk, source=source, target=target, reason="moved")

    stored = ActionAudit.objects.get(pk=row.pk)
    assert (stored.status, stored.reason) == (source, "")


@pytest.mark.parametrize("status", list(Status))
def test_a_row_starts_only_in_an_initial_status(job, status):
    values = {"workspace_id": job.workspace_id, "job": job, "call_key": "1.0", "action": "x"}

    if status in EXPECTED_INITIAL:
        assert lifecycle.create(status=status, **values).status == status
    else:
        with pytest.raises(TransitionRefused):
            lifecycle.create(status=status, **values)
        assert not ActionAudit.objects.filter(job=job).exists()


def test_a_row_the_rechecked_policy_holds_stays_open(job):
    row = make_audit(job, status=Status.EXECUTING)

    assert audit.finish_action(
        row=row, status=Status.PENDING_APPROVAL, reason="approval_required", result={}
    )

    stored = ActionAudit.objects.get(pk=row.pk)
    assert (stored.status, stored.finished_at) == (Status.PENDING_APPROVAL, None)


def test_each_decision_is_one_of_the_held_rows_moves():
    assert set(lifecycle.DECISIONS) == set(ActionAudit.Decision)
    for target in lifecycle.DECISIONS.values():
        assert target in lifecycle.ALLOWED[Status.PENDING_APPROVAL]
