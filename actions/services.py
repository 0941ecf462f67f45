"""Running one proposed action: policy, audit row first, connector at most once, outcome."""

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from actions import policy
from actions.arguments import ParsedArguments, parse_arguments
from actions.connectors.base import ConnectorError, OutcomeUnknown
from actions.registry import REGISTRY, ActionSpec, action_for_tool
from audit import services as audit
from audit.models import ActionAudit
from core.publish import publish_on_commit

logger = logging.getLogger(__name__)

Status = ActionAudit.Status
TOOL_RESULT_MAX_CHARS = 2000
RUN_APPROVED_ACTION = "actions.tasks.run_approved_action"


@dataclass(frozen=True)
class ActionOutcome:
    """What one step became, for the job layer (tool result, webhook event, metrics)."""

    call_key: str
    action: str
    status: str
    reason: str
    result: dict
    # True only for the step that put the action on hold: the job layer announces it once.
    newly_held: bool = False

    @classmethod
    def of(cls, row: ActionAudit, *, newly_held: bool = False) -> "ActionOutcome":
        result = row.result
        if row.status == Status.PENDING_APPROVAL and row.hold_details:
            # No outcome yet: the model and the job's client are told why it waits.
            result = {"details": row.hold_details}
        return cls(row.call_key, row.action, row.status, row.reason, result, newly_held)

    def as_tool_result(self) -> str:
        """What the model is told, so its final answer can be truthful; bounded in size."""
        text = json.dumps(
            {
                "action": self.action,
                "status": self.status,
                "reason": self.reason or None,
                "result": self.result,
            },
            default=str,
        )
        return text if len(text) <= TOOL_RESULT_MAX_CHARS else text[:TOOL_RESULT_MAX_CHARS] + "…"


@dataclass(frozen=True)
class Proposal:
    """One tool call of a job's stored plan, as the model wrote it."""

    job_id: Any
    workspace_id: str
    call_key: str
    tool_call_id: str  # the model's own id, echoed in the tool result; not a key of ours
    tool_name: str
    raw_arguments: str

    @cached_property
    def spec(self) -> ActionSpec | None:
        return action_for_tool(self.tool_name)

    @cached_property
    def parsed(self) -> ParsedArguments:
        return parse_arguments(self.raw_arguments)

    @property
    def arguments(self) -> dict | None:
        """The arguments as a bounded JSON object, or None when the model wrote anything else."""
        return self.parsed.value


# A database that went away is the job's to retry (it hands the job back); anything else that
# escapes one action is a fault of that action alone.
_TRANSIENT = (OperationalError, InterfaceError)


def run_proposed_action(
    proposal: Proposal, *, job_actions: list[str], workspace: policy.WorkspacePolicy
) -> ActionOutcome:
    """Decide and, when allowed, execute one step of a job's plan; never twice per step.

    Whatever the model wrote, the step ends with an outcome: an unexpected error ends this
    action (reason `internal_error`) and the job goes on to its next step.
    """
    try:
        return _run_proposed_action(proposal, job_actions=job_actions, workspace=workspace)
    except _TRANSIENT:
        raise
    except Exception:
        logger.exception("action %s of job %s failed", proposal.call_key, proposal.job_id)
        return _fail_unexpectedly(proposal)


def _run_proposed_action(
    proposal: Proposal, *, job_actions: list[str], workspace: policy.WorkspacePolicy
) -> ActionOutcome:
    existing = audit.find_action(job_id=proposal.job_id, call_key=proposal.call_key)
    if existing is not None:
        return _resume(existing)

    decision = policy.decide(
        spec=proposal.spec,
        arguments=proposal.arguments,
        argument_errors=proposal.parsed.errors,
        job_actions=job_actions,
        workspace=workspace,
    )
    if decision.allowed:
        row, created = _record(proposal, status=Status.EXECUTING)
    elif decision.status == policy.PENDING_APPROVAL:
        row, created = _record(
            proposal,
            status=Status.PENDING_APPROVAL,
            reason=decision.reason,
            hold_details=decision.errors,
            arguments_hash=policy.arguments_hash(proposal.arguments),
            expires_in_seconds=settings.ACTION_APPROVAL_TTL_SECONDS,
        )
    else:
        row, created = _record(
            proposal,
            status=decision.status,
            reason=decision.reason,
            result={"errors": decision.errors} if decision.errors else {},
        )
    if not created:
        return _resume(row)
    if row.status != Status.EXECUTING:
        return ActionOutcome.of(row, newly_held=row.status == Status.PENDING_APPROVAL)
    return _execute(row)


def _fail_unexpectedly(proposal: Proposal) -> ActionOutcome:
    """End the step `failed` whatever state the error left it in, never resending anything."""
    row = audit.find_action(job_id=proposal.job_id, call_key=proposal.call_key)
    if row is None:
        # Raw text only: the parsed arguments may be what broke the step.
        row, _ = audit.record_action(
            workspace_id=proposal.workspace_id,
            job_id=proposal.job_id,
            call_key=proposal.call_key,
            action=str(proposal.tool_name)[:64],
            arguments={"raw": str(proposal.raw_arguments)[:2000]},
            status=Status.FAILED,
            reason="internal_error",
        )
    else:
        row = _end_unexpectedly(row)
    return ActionOutcome.of(row)


def _end_unexpectedly(row: ActionAudit) -> ActionAudit:
    """Give an `executing` row its outcome after an unexpected error; other rows stay as they are.

    `failed` while its call never started; once started, the provider may have acted, so
    `unknown`, for a human to settle (never resent).
    """
    if row.status == Status.EXECUTING:
        status = Status.UNKNOWN if row.started_at else Status.FAILED
        audit.finish_action(row=row, status=status, reason="internal_error", result=row.result)
    return audit.get_action(row.pk)


def refuse_proposed_action(proposal: Proposal, *, reason: str) -> ActionOutcome:
    """Record a proposal that will not run (e.g. beyond the job's limits) as `denied`."""
    row, _ = _record(proposal, status=Status.DENIED, reason=reason)
    return ActionOutcome.of(row)


def execute_approved_action(*, audit_id: int) -> None:
    """Run an approved action once: re-check the policy, claim the call, record the outcome."""
    row = audit.get_action(audit_id)
    # Started already: another delivery holds the call; the sweeper settles it after a lease.
    if row is None or row.status != Status.EXECUTING or row.started_at is not None:
        return
    try:
        _execute(row)
    except _TRANSIENT:
        raise
    except Exception:
        logger.exception("approved action (audit %s) failed unexpectedly", audit_id)
        row = audit.get_action(audit_id)
        if row is not None:
            _end_unexpectedly(row)


def _record(proposal: Proposal, *, status: str, **fields) -> tuple[ActionAudit, bool]:
    arguments = proposal.arguments
    return audit.record_action(
        workspace_id=proposal.workspace_id,
        job_id=proposal.job_id,
        call_key=proposal.call_key,
        action=proposal.spec.name if proposal.spec else proposal.tool_name[:64],
        arguments=arguments if arguments is not None else {"raw": proposal.raw_arguments[:2000]},
        status=status,
        **fields,
    )


def _resume(row: ActionAudit) -> ActionOutcome:
    """The outcome of a step recorded by an earlier delivery of the same job."""
    if row.status != Status.EXECUTING:
        return ActionOutcome.of(row)
    if row.started_at is None:
        return _execute(row)  # the provider was never called: safe to run now
    spec = REGISTRY.get(row.action)
    if spec is not None and spec.connector.idempotent:
        return _call_connector(row, spec)
    # We cannot know whether the provider acted before the crash; a human decides.
    audit.finish_action(row=row, status=Status.UNKNOWN, reason="interrupted", result=row.result)
    return ActionOutcome.of(audit.get_action(row.pk))


def _execute(row: ActionAudit) -> ActionOutcome:
    """Re-check the policy right before the call, claim the call, then call the connector."""
    spec = REGISTRY.get(row.action)
    decision = _recheck(row, spec)
    if not decision.allowed:
        held = decision.status == policy.PENDING_APPROVAL
        hold = {
            "details": decision.errors,
            "arguments_hash": policy.arguments_hash(row.arguments),
            "expires_in_seconds": settings.ACTION_APPROVAL_TTL_SECONDS,
        }
        audit.finish_action(
            row=row,
            status=decision.status,
            reason=decision.reason,
            result={"errors": decision.errors} if decision.errors and not held else {},
            before_start=True,
            hold=hold if held else None,
        )
        return ActionOutcome.of(audit.get_action(row.pk))
    # The claim is the last write before the side effect: a crash after it leaves evidence
    # (`unknown`), never a silent, repeatable send.
    if not audit.start_action(row=row):
        return ActionOutcome.of(audit.get_action(row.pk))
    return _call_connector(row, spec)


def _recheck(row: ActionAudit, spec: ActionSpec | None) -> policy.Decision:
    """The policy as it stands now: a kill switch flipped while the action waited stops it."""
    # The approver's hash first: an approval covers the arguments it named, nothing else.
    expected = row.approved_arguments_hash or row.arguments_hash
    if expected and policy.arguments_hash(row.arguments) != expected:
        return policy.Decision("rejected", "arguments_changed")
    return policy.decide(
        spec=spec,
        arguments=row.arguments,
        job_actions=row.job.allowed_actions,
        workspace=policy.WorkspacePolicy.of(row.workspace),
        approved=row.decision == ActionAudit.Decision.APPROVE,
    )


def _call_connector(row: ActionAudit, spec: ActionSpec) -> ActionOutcome:
    try:
        result = spec.connector.execute(
            row.arguments, workspace_id=row.workspace_id, idempotency_key=f"audit-{row.pk}"
        )
    except ConnectorError as exc:
        audit.finish_action(
            row=row, status=Status.FAILED, reason=exc.reason, result={"error": exc.message}
        )
        logger.warning("action %s (audit %s) failed: %s", row.action, row.pk, exc.reason)
    except OutcomeUnknown as exc:
        audit.finish_action(
            row=row,
            status=Status.UNKNOWN,
            reason="provider_outcome_unknown",
            result={"error": str(exc)},
        )
        logger.warning("action %s (audit %s): outcome unknown", row.action, row.pk)
    else:
        audit.finish_action(row=row, status=Status.EXECUTED, result=result.data)
    return ActionOutcome.of(audit.get_action(row.pk))


# --- Sweeping ---------------------------------------------------------------------------------


def sweep_actions() -> dict[str, int]:
    """Expire undecided approvals, settle calls whose worker died, republish lost approvals."""
    now = timezone.now()
    expired = audit.expire_pending(now=now)
    interrupted = audit.started_before(now - timedelta(seconds=settings.ACTION_LEASE_SECONDS))
    for row in interrupted:
        _resume(row)  # idempotent connectors run again; the others become `unknown`
    lost = audit.approved_not_started_before(
        now - timedelta(seconds=settings.JOB_REQUEUE_AFTER_SECONDS)
    )
    for audit_id in lost:
        publish_on_commit(RUN_APPROVED_ACTION, audit_id)
    counts = {"expired": expired, "interrupted": len(interrupted), "republished": len(lost)}
    if any(counts.values()):
        logger.warning("action sweeper: %s", counts)
    return counts
