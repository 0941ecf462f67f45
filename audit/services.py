"""Writing and reading the action audit trail; other apps go through these functions."""

from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit import lifecycle
from audit.models import ActionAudit
from core import metrics
from core.action_names import ACTION_NAMES

Status = ActionAudit.Status


def find_action(*, job_id, call_key: str) -> ActionAudit | None:
    """The audit row of one step of a job's plan, if it was ever recorded."""
    return ActionAudit.objects.filter(job_id=job_id, call_key=call_key).first()


def get_action(row_id: int) -> ActionAudit | None:
    """One audit row with its job and workspace, as the database holds it now."""
    return ActionAudit.objects.select_related("job", "workspace").filter(pk=row_id).first()


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
    arguments_hash: str = "",
    expires_in_seconds: int | None = None,
) -> tuple[ActionAudit, bool]:
    """Insert the row for (job, call_key); return (row, created). An existing row is kept."""
    now = timezone.now()
    try:
        with transaction.atomic():
            row = lifecycle.create(
                workspace_id=workspace_id,
                job_id=job_id,
                call_key=call_key,
                action=action,
                arguments=arguments,
                status=status,
                reason=reason,
                result=result or {},
                arguments_hash=arguments_hash,
                expires_at=(
                    now + timedelta(seconds=expires_in_seconds) if expires_in_seconds else None
                ),
                created_at=now,
                updated_at=now,
                finished_at=None if status in ActionAudit.OPEN_STATUSES else now,
            )
    except IntegrityError:
        # Another delivery of the same job recorded this step first: its row is the truth.
        return ActionAudit.objects.get(job_id=job_id, call_key=call_key), False
    if status not in ActionAudit.OPEN_STATUSES:
        _count_outcome(action, status)
    return row, True


def finish_action(
    *, row: ActionAudit, status: str, reason: str = "", result: dict, before_start: bool = False
) -> bool:
    """Move an `executing` row to its outcome; False if it had already left `executing`.

    `before_start`: only while no process has claimed the connector call (a refusal must never
    overwrite the row of a call in flight).
    """
    now = timezone.now()
    changes = {
        "reason": reason,
        "result": result,
        "updated_at": now,
        # A row the re-checked policy holds for a human is open still.
        "finished_at": None if status in ActionAudit.OPEN_STATUSES else now,
    }
    moved = lifecycle.move(
        row.pk,
        source=Status.EXECUTING,
        target=status,
        when=Q(started_at__isnull=True) if before_start else None,
        **changes,
    )
    if moved:
        row.status = status
        for name, value in changes.items():
            setattr(row, name, value)
        if status not in ActionAudit.OPEN_STATUSES:
            _count_outcome(row.action, status)
    return moved


def _count_outcome(action: str, status: str) -> None:
    # The action label takes known names only: a model may invent any tool name.
    metrics.count("ai_actions", action=action if action in ACTION_NAMES else "other", status=status)


def start_action(*, row: ActionAudit) -> bool:
    """Claim the connector call of an `executing` row; False if another process claimed it."""
    now = timezone.now()
    claimed = lifecycle.move(
        row.pk,
        source=Status.EXECUTING,
        target=Status.EXECUTING,
        when=Q(started_at__isnull=True),
        started_at=now,
        updated_at=now,
    )
    if claimed:
        row.started_at = row.updated_at = now
    return claimed


def decide_pending(
    *, row_id: int, status: str, decided_by: str, reason: str = "", arguments_hash: str = ""
) -> bool:
    """Move a pending row to `status` with who decided, in one conditional UPDATE.

    Approval (status `executing`) also requires an unexpired row whose arguments hash matches;
    False when the row was no longer pending (or did not match): someone else decided first.
    """
    now = timezone.now()
    changes: dict = {"decided_by": decided_by, "decided_at": now, "updated_at": now}
    when = None
    if status == Status.EXECUTING:
        when = Q(expires_at__gt=now, arguments_hash=arguments_hash)
    else:
        changes.update(reason=reason, finished_at=now)
    return lifecycle.move(
        row_id, source=Status.PENDING_APPROVAL, target=status, when=when, **changes
    )


def expire_pending(*, now=None, row_id: int | None = None) -> int:
    """Move pending rows past their expiry to `expired`; returns how many."""
    now = now or timezone.now()
    rows = ActionAudit.objects.filter(expires_at__lte=now)
    if row_id is not None:
        rows = rows.filter(pk=row_id)
    return lifecycle.move_all(
        rows,
        source=Status.PENDING_APPROVAL,
        target=Status.EXPIRED,
        reason="approval_expired",
        updated_at=now,
        finished_at=now,
    )


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


def started_before(cutoff) -> list[ActionAudit]:
    """`executing` rows whose connector call started before `cutoff`: their worker died."""
    return list(
        ActionAudit.objects.select_related("job", "workspace").filter(
            status=Status.EXECUTING, started_at__lt=cutoff
        )[:500]
    )


def approved_not_started_before(cutoff) -> list[int]:
    """Ids of approved rows never picked up since `cutoff`: their message may be lost."""
    return list(
        ActionAudit.objects.filter(
            status=Status.EXECUTING, started_at__isnull=True, decided_at__lt=cutoff
        ).values_list("pk", flat=True)[:500]
    )
