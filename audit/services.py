"""Writing and reading the action audit trail; other apps go through these functions."""

import re
import uuid
from datetime import timedelta

from django.contrib.postgres.search import SearchQuery
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit import lifecycle
from audit.models import ActionAudit, subject_words
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
    hold_details: list | None = None,
) -> tuple[ActionAudit, bool]:
    """Insert the row for (job, call_key); return (row, created). An existing row is kept.

    A held row (`pending_approval`) records `reason` as its hold reason too: the status's reason
    may change later, the hold's never does.
    """
    now = timezone.now()
    held = status == Status.PENDING_APPROVAL
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
                hold_reason=reason if held else "",
                hold_details=(hold_details or []) if held else [],
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
        _count_outcome(action, status, reason)
    return row, True


def finish_action(
    *,
    row: ActionAudit,
    status: str,
    reason: str = "",
    result: dict,
    before_start: bool = False,
    hold: dict | None = None,
) -> bool:
    """Move an `executing` row to its outcome; False if it had already left `executing`.

    `before_start`: only while no process has claimed the connector call (a refusal must never
    overwrite the row of a call in flight). `hold`: for a row the re-checked policy holds for
    a human, its details, arguments hash and time to expiry (hold_fields).
    """
    now = timezone.now()
    changes = {
        "reason": reason,
        "result": result,
        "updated_at": now,
        # A row the re-checked policy holds for a human is open still.
        "finished_at": None if status in ActionAudit.OPEN_STATUSES else now,
    }
    if status == Status.PENDING_APPROVAL:
        changes.update(hold_fields(reason=reason, now=now, **(hold or {})))
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
            _count_outcome(row.action, status, reason)
    return moved


def hold_fields(
    *,
    reason: str,
    now,
    details: list | None = None,
    arguments_hash: str = "",
    expires_in_seconds: int | None = None,
) -> dict:
    """The columns that put a row on hold: why, its particulars, what is approved, until when."""
    return {
        "hold_reason": reason,
        "hold_details": details or [],
        "arguments_hash": arguments_hash,
        "expires_at": now + timedelta(seconds=expires_in_seconds) if expires_in_seconds else None,
    }


def _count_outcome(action: str, status: str, reason: str = "", *, amount: int = 1) -> None:
    # The action label takes known names only: a model may invent any tool name. Reasons are
    # codes our own modules write, a bounded set.
    name = action if action in ACTION_NAMES else "other"
    metrics.count("ai_actions", amount, action=name, status=status, reason=reason)


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
    *, row_id: int, decision: str, decided_by: str, reason: str = "", arguments_hash: str = ""
) -> bool:
    """Record a human's decision on a pending row and move it, in one conditional UPDATE.

    The hold's reason stays as it was; the decision (who, when, approve or reject, the hash
    approved) goes beside it. Both need an unexpired row; an approval also needs the row's
    arguments hash to be `arguments_hash`. False when the row was no longer pending (or did not
    match): someone else decided first, or it expired.
    """
    now = timezone.now()
    target = lifecycle.DECISIONS[decision]
    changes: dict = {
        "decision": decision,
        "decided_by": decided_by,
        "decided_at": now,
        "updated_at": now,
    }
    when = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    if decision == ActionAudit.Decision.APPROVE:
        when &= Q(arguments_hash=arguments_hash)
        changes["approved_arguments_hash"] = arguments_hash
    else:
        changes.update(reason=reason, finished_at=now)
    moved = lifecycle.move(
        row_id, source=Status.PENDING_APPROVAL, target=target, when=when, **changes
    )
    if moved and target != Status.EXECUTING:  # an approved action is counted when it ends
        action = ActionAudit.objects.values_list("action", flat=True).get(pk=row_id)
        _count_outcome(action, target, reason)
    return moved


def pending_count(*, workspace_id: str | None = None) -> int:
    """How many actions wait for a decision (of one workspace), on the status index."""
    rows = ActionAudit.objects.filter(status=Status.PENDING_APPROVAL)
    return (rows.filter(workspace_id=workspace_id) if workspace_id else rows).count()


def expire_pending(*, now=None, row_id: int | None = None) -> int:
    """Move pending rows past their expiry to `expired`; returns how many."""
    now = now or timezone.now()
    rows = ActionAudit.objects.filter(status=Status.PENDING_APPROVAL, expires_at__lte=now)
    if row_id is not None:
        rows = rows.filter(pk=row_id)
    by_action: dict[str, list[int]] = {}
    for pk, action in rows.values_list("pk", "action"):
        by_action.setdefault(action, []).append(pk)
    expired = 0
    # One UPDATE per action name, so each expiry is counted under its action; a row decided
    # meanwhile is no longer pending and neither moves nor counts.
    for action, ids in by_action.items():
        moved = lifecycle.move_all(
            ActionAudit.objects.filter(pk__in=ids),
            source=Status.PENDING_APPROVAL,
            target=Status.EXPIRED,
            reason="approval_expired",
            updated_at=now,
            finished_at=now,
        )
        if moved:
            _count_outcome(action, Status.EXPIRED, "approval_expired", amount=moved)
        expired += moved
    return expired


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


_CALL_KEY = re.compile(r"^\d{1,4}\.\d{1,4}$")
_DOMAIN = re.compile(r"^@?[\w-]+(\.[\w-]+)+\.?$")


def search_trail(rows: QuerySet[ActionAudit], term: str) -> QuerySet[ActionAudit]:
    """The rows a search term names, each kind of term answered by an index, never a LIKE scan:

    a job id; a call key (`1.0`); an address (in to, cc or bcc); `@acme.com` (any address of
    that domain); a bare domain (its addresses, or subjects with that word); else subject words.
    """
    term = term.strip()[:200]
    if not term:
        return rows
    try:
        return rows.filter(job_id=uuid.UUID(term))
    except ValueError:
        pass
    if _CALL_KEY.match(term):
        return rows.filter(call_key=term)
    lowered = term.lower()
    if "@" in lowered[1:]:
        return rows.filter(recipients__contains=[lowered])
    words = Q(subject_search=SearchQuery(term, config="simple"))
    rows = rows.alias(subject_search=subject_words())
    if _DOMAIN.match(lowered):
        domain = lowered.lstrip("@").rstrip(".")
        in_domain = Q(recipient_domains__contains=[domain])
        return rows.filter(in_domain if lowered.startswith("@") else in_domain | words)
    return rows.filter(words)
