"""An action audit row's statuses: which may follow which, and the one way each move is written.

A row starts `executing` (allowed), `pending_approval` (held) or already final (refused by the
policy, or failed before it could run). A held row is approved (-> executing), rejected or
expires; a decision is one of these moves (DECISIONS), written once beside the hold's reason.
An executing row's call is claimed (executing -> executing, started_at set) and ends in its
outcome; the policy re-checked right before the call may still refuse it, or hold it for a
human. Final rows never change: the database refuses it too (migration 0004's trigger).
"""

from collections.abc import Iterable
from typing import Any, cast

from django.db.models import Q, QuerySet

from audit.models import ActionAudit
from core.transitions import Transitions

Status = ActionAudit.Status

_REFUSALS = frozenset({Status.SKIPPED, Status.DENIED, Status.REJECTED})
ALLOWED: dict[str, frozenset[str]] = {
    Status.EXECUTING: frozenset(
        {Status.EXECUTING, Status.EXECUTED, Status.FAILED, Status.UNKNOWN, Status.PENDING_APPROVAL}
        | _REFUSALS
    ),
    Status.PENDING_APPROVAL: frozenset({Status.EXECUTING, Status.REJECTED, Status.EXPIRED}),
    **{status: frozenset() for status in ActionAudit.FINAL_STATUSES},
}
INITIAL = frozenset({Status.EXECUTING, Status.PENDING_APPROVAL, Status.FAILED} | _REFUSALS)
# What a human's decision on a held row moves it to.
DECISIONS: dict[str, str] = {
    ActionAudit.Decision.APPROVE: Status.EXECUTING,
    ActionAudit.Decision.REJECT: Status.REJECTED,
}
ACTIONS = Transitions(objects=ActionAudit.objects, allowed=ALLOWED, initial=INITIAL)


def create(**values: Any) -> ActionAudit:
    """Insert a row; its status must be one a row may start in."""
    return cast(ActionAudit, ACTIONS.create(**values))


def move(
    row_id: int,
    *,
    source: str | Iterable[str],
    target: str,
    when: Q | None = None,
    **fields: Any,
) -> bool:
    """Move the row from `source` to `target` (and only if `when` holds), writing `fields`.

    False when the row was not in `source` (or `when` failed): another process moved it first.
    Raises TransitionRefused for a move ALLOWED does not hold, before anything is written.
    """
    rows = ActionAudit.objects.filter(pk=row_id)
    if when is not None:
        rows = rows.filter(when)
    return ACTIONS.move(rows, source=source, target=target, **fields) == 1


def move_all(
    rows: QuerySet[ActionAudit], *, source: str | Iterable[str], target: str, **fields: Any
) -> int:
    """`move` for every row of a queryset, in one UPDATE; how many moved."""
    return ACTIONS.move(rows, source=source, target=target, **fields)
