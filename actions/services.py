"""Running one proposed action: policy, audit row first, connector at most once, outcome."""

import json
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from actions import policy
from actions.connectors.base import ConnectorError
from actions.registry import REGISTRY, ActionSpec, action_for_tool
from audit import services as audit
from audit.models import ActionAudit

logger = logging.getLogger(__name__)

Status = ActionAudit.Status
TOOL_RESULT_MAX_CHARS = 2000


@dataclass(frozen=True)
class ActionOutcome:
    call_key: str
    action: str
    status: str
    reason: str
    result: dict

    @classmethod
    def of(cls, row: ActionAudit) -> "ActionOutcome":
        return cls(row.call_key, row.action, row.status, row.reason, row.result)

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
    def arguments(self) -> dict | None:
        """The arguments as a JSON object, or None when the model wrote anything else."""
        try:
            value = json.loads(self.raw_arguments or "{}")
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def run_proposed_action(
    proposal: Proposal, *, job_actions: list[str], workspace_actions: list[str]
) -> ActionOutcome:
    """Decide and, when allowed, execute one step of a job's plan; never twice per step."""
    existing = audit.find_action(job_id=proposal.job_id, call_key=proposal.call_key)
    if existing is not None:
        return _resume(existing)

    decision = policy.decide(
        spec=proposal.spec,
        arguments=proposal.arguments,
        job_actions=job_actions,
        workspace_actions=workspace_actions,
    )
    row, created = _record(
        proposal,
        status=Status.EXECUTING if decision.allowed else decision.status,
        reason=decision.reason,
        result={"errors": decision.errors} if decision.errors else {},
    )
    if not created:
        return _resume(row)
    if not decision.allowed:
        return ActionOutcome.of(row)
    # The `executing` row is committed before the connector runs: a crash from here on leaves
    # evidence instead of a silent, repeatable side effect.
    return _execute(row, proposal.spec)


def refuse_proposed_action(proposal: Proposal, *, reason: str) -> ActionOutcome:
    """Record a proposal that will not run (e.g. beyond the job's limits) as `denied`."""
    row, _ = _record(proposal, status=Status.DENIED, reason=reason)
    return ActionOutcome.of(row)


def _record(
    proposal: Proposal, *, status: str, reason: str = "", result: dict | None = None
) -> tuple[ActionAudit, bool]:
    arguments = proposal.arguments
    return audit.record_action(
        workspace_id=proposal.workspace_id,
        job_id=proposal.job_id,
        call_key=proposal.call_key,
        action=proposal.spec.name if proposal.spec else proposal.tool_name[:64],
        arguments=arguments if arguments is not None else {"raw": proposal.raw_arguments[:2000]},
        status=status,
        reason=reason,
        result=result,
    )


def _resume(row: ActionAudit) -> ActionOutcome:
    """The outcome of a step recorded by an earlier delivery of the same job."""
    if row.status != Status.EXECUTING:
        return ActionOutcome.of(row)
    spec = REGISTRY.get(row.action)
    if spec is not None and spec.connector.idempotent:
        return _execute(row, spec)
    # We cannot know whether the provider acted before the crash; a human decides.
    audit.finish_action(row=row, status=Status.UNKNOWN, reason="interrupted", result=row.result)
    return ActionOutcome.of(row)


def _execute(row: ActionAudit, spec: ActionSpec) -> ActionOutcome:
    try:
        result = spec.connector.execute(
            row.arguments, workspace_id=row.workspace_id, idempotency_key=f"audit-{row.pk}"
        )
    except ConnectorError as exc:
        reason = "provider_rejected" if exc.permanent else "provider_unavailable"
        audit.finish_action(
            row=row, status=Status.FAILED, reason=reason, result={"error": exc.message}
        )
        logger.warning("action %s (audit %s) failed: %s", row.action, row.pk, reason)
    else:
        audit.finish_action(row=row, status=Status.EXECUTED, result=result.data)
    return ActionOutcome.of(row)
