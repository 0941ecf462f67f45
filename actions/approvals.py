"""Human decisions on actions waiting for approval: approve, reject, list."""

import logging

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from actions.services import RUN_APPROVED_ACTION
from audit import services as audit
from audit.models import ActionAudit
from core.exceptions import OrchestratorError
from core.publish import publish_on_commit

logger = logging.getLogger(__name__)

Status = ActionAudit.Status
Decision = ActionAudit.Decision


class ActionNotFound(OrchestratorError):
    code = "not_found"
    status = 404


class ActionNotPending(OrchestratorError):
    code = "action_not_pending"
    status = 409


class ApprovalExpired(OrchestratorError):
    code = "approval_expired"
    status = 409


class ArgumentsChanged(OrchestratorError):
    code = "arguments_changed"
    status = 409


def list_actions(*, workspace, status: str | None = None) -> QuerySet[ActionAudit]:
    """The workspace's actions, newest first, optionally of one status."""
    rows = ActionAudit.objects.for_workspace(workspace).order_by("-created_at", "-id")
    return rows.filter(status=status) if status else rows


def approve_action(
    *, workspace, action_id: int, arguments_hash: str, decided_by: str
) -> ActionAudit:
    """Approve the exact arguments of a pending action and have a worker run it, at most once."""
    row = _pending_row(workspace, action_id)
    if arguments_hash != row.arguments_hash:
        raise ArgumentsChanged(
            "arguments_hash does not match the arguments awaiting approval.",
            fields={"arguments_hash": ["Does not match the pending arguments."]},
        )
    with transaction.atomic():
        # The conditional UPDATE decides between concurrent approvals: one moves the row.
        approved = audit.decide_pending(
            row_id=row.pk,
            decision=Decision.APPROVE,
            decided_by=decided_by,
            arguments_hash=arguments_hash,
        )
        if approved:
            # The sweeper republishes approved actions that no worker picked up.
            publish_on_commit(RUN_APPROVED_ACTION, row.pk)
    if not approved:
        _refuse_decision(row)
    logger.info("action %s approved by %s", row.pk, decided_by)
    return audit.get_action(row.pk)


def reject_action(*, workspace, action_id: int, decided_by: str) -> ActionAudit:
    """Refuse a pending action for good; it never runs."""
    row = _pending_row(workspace, action_id)
    if not audit.decide_pending(
        row_id=row.pk,
        decision=Decision.REJECT,
        decided_by=decided_by,
        reason="rejected_by_reviewer",
    ):
        _refuse_decision(row)
    logger.info("action %s rejected by %s", row.pk, decided_by)
    return audit.get_action(row.pk)


def _pending_row(workspace, action_id: int) -> ActionAudit:
    # Another workspace's action is the same 404 as an unknown id.
    row = ActionAudit.objects.for_workspace(workspace).filter(pk=action_id).first()
    if row is None:
        raise ActionNotFound("Not found.")
    expired = row.expires_at is not None and row.expires_at <= timezone.now()
    if row.status == Status.PENDING_APPROVAL and expired:
        audit.expire_pending(row_id=row.pk)
        raise ApprovalExpired("The approval expired; the action will not run.")
    if row.status != Status.PENDING_APPROVAL:
        raise ActionNotPending(f"The action is {row.status}, not pending_approval.")
    return row


def _refuse_decision(row: ActionAudit) -> None:
    """Explain why a conditional UPDATE moved nothing: expired meanwhile, or decided by another."""
    current = audit.get_action(row.pk)
    if current.status == Status.PENDING_APPROVAL or current.status == Status.EXPIRED:
        audit.expire_pending(row_id=row.pk)
        raise ApprovalExpired("The approval expired; the action will not run.")
    raise ActionNotPending(f"The action is {current.status}, not pending_approval.")
