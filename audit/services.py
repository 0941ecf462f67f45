"""Writing and reading the action audit trail; other apps go through these functions."""

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from actions.names import ACTION_NAMES
from audit.models import ActionAudit
from orchestrator import metrics

Status = ActionAudit.Status


def find_action(*, job_id, call_key: str) -> ActionAudit | None:
    """The audit row of one step of a job's plan, if it was ever recorded."""
    return ActionAudit.objects.filter(job_id=job_id, call_key=call_key).first()


def record_action(
    *,
    workspace_id: str,
    job_id,
    call_key: str,
    action: str,
    arguments: dict,
    status: str,
    reason: str = "",
    result: dict | None = None,
) -> tuple[ActionAudit, bool]:
    """Insert the row for (job, call_key); return (row, created). An existing row is kept."""
    now = timezone.now()
    try:
        with transaction.atomic():
            row = ActionAudit.objects.create(
                workspace_id=workspace_id,
                job_id=job_id,
                call_key=call_key,
                action=action,
                arguments=arguments,
                status=status,
                reason=reason,
                result=result or {},
                created_at=now,
                updated_at=now,
                finished_at=None if status == Status.EXECUTING else now,
            )
    except IntegrityError:
        # Another delivery of the same job recorded this step first: its row is the truth.
        return ActionAudit.objects.get(job_id=job_id, call_key=call_key), False
    if status not in ActionAudit.OPEN_STATUSES:
        _count_outcome(action, status)
    return row, True


def finish_action(*, row: ActionAudit, status: str, reason: str = "", result: dict) -> bool:
    """Move an `executing` row to its outcome; False if it had already left `executing`."""
    now = timezone.now()
    changes = {
        "status": status,
        "reason": reason,
        "result": result,
        "updated_at": now,
        "finished_at": now,
    }
    updated = ActionAudit.objects.filter(pk=row.pk, status=Status.EXECUTING).update(**changes)
    if updated:
        for name, value in changes.items():
            setattr(row, name, value)
        _count_outcome(row.action, status)
    return bool(updated)


def _count_outcome(action: str, status: str) -> None:
    # The action label takes known names only: a model may invent any tool name.
    metrics.count("ai_actions", action=action if action in ACTION_NAMES else "other", status=status)


def actions_for_job(job_id) -> list[ActionAudit]:
    """A job's audit rows in plan order."""
    return list(ActionAudit.objects.filter(job_id=job_id).order_by("created_at", "id"))


def distinct_reasons() -> list[str]:
    """Every non-empty reason in the trail, by a loose index scan: one index probe per value."""
    # SELECT DISTINCT would read every row; this hops from one value to the next on the
    # (reason, created_at) index, so its cost grows with the number of reasons, not of rows.
    sql = """
        WITH RECURSIVE r(reason) AS (
            (SELECT reason FROM action_audit ORDER BY reason LIMIT 1)
            UNION ALL
            SELECT (SELECT reason FROM action_audit WHERE reason > r.reason
                    ORDER BY reason LIMIT 1)
            FROM r WHERE r.reason IS NOT NULL
        )
        SELECT reason FROM r WHERE reason IS NOT NULL AND reason <> ''
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [reason for (reason,) in cursor.fetchall()]
