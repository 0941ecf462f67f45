"""The job lifecycle: submit, publish, claim, run against the model, finish, sweep."""

import contextlib
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import F
from django.utils import timezone

from actions.registry import tools_for
from actions.services import Proposal, refuse_proposed_action, run_proposed_action
from orchestrator import model_client, redis_keys
from orchestrator.exceptions import (
    IdempotencyKeyReused,
    ModelRequestFailed,
    ModelUnavailable,
    OrchestratorError,
)
from orchestrator.models import Job, Workspace
from orchestrator.redis_client import get_redis

logger = logging.getLogger(__name__)

Status = Job.Status
SWEEP_BATCH = 500


class ActionsNotAllowed(OrchestratorError):
    code = "invalid_request"
    status = 400


@dataclass(frozen=True)
class Submission:
    job: Job
    replayed: bool


# --- Submitting -------------------------------------------------------------------------------


def submit_job(
    *,
    workspace: Workspace,
    client_request_id: str,
    messages: list[dict],
    actions: list[str] | None = None,
    model: str | None = None,
    max_output_tokens: int | None = None,
    metadata: dict | None = None,
) -> Submission:
    """Store a job once per (workspace, client_request_id) and publish it after commit.

    Redis `SET NX` is the fast path for replays; the unique constraint is the guarantee, so
    submission keeps working while Redis is down.
    """
    allowed = workspace.effective_allowed_actions
    if actions is not None and not set(actions) <= set(allowed):
        refused = sorted(set(actions) - set(allowed))
        raise ActionsNotAllowed(
            "Some requested actions are not allowed for this workspace.",
            fields={"actions": [f"not allowed for this workspace: {', '.join(refused)}"]},
        )
    fingerprint = _fingerprint(
        messages=messages,
        actions=actions,
        model=model,
        max_output_tokens=max_output_tokens,
        metadata=metadata,
    )
    job_id = uuid.uuid4()
    if _reserve_request_id(workspace.id, client_request_id, job_id) is False:
        existing = Job.objects.filter(
            workspace=workspace, client_request_id=client_request_id
        ).first()
        # No row yet means the first request is still in flight or failed before committing:
        # fall through to the insert and let the constraint decide.
        if existing is not None:
            return _replay(existing, fingerprint)

    try:
        with transaction.atomic():
            job = Job.objects.create(
                id=job_id,
                workspace=workspace,
                client_request_id=client_request_id,
                request_fingerprint=fingerprint,
                messages=messages,
                model=model or settings.AI_MODEL,
                max_output_tokens=max_output_tokens or settings.AI_MAX_OUTPUT_TOKENS,
                allowed_actions=[name for name in allowed if actions is None or name in actions],
                metadata=metadata or {},
            )
            # robust: a dead broker is logged, not raised; the sweeper republishes the job.
            _publish_on_commit(job.id)
    except IntegrityError:
        existing = Job.objects.filter(
            workspace=workspace, client_request_id=client_request_id
        ).first()
        if existing is None:
            raise
        _point_request_id_at(workspace.id, client_request_id, existing.id)
        return _replay(existing, fingerprint)
    return Submission(job=job, replayed=False)


def _fingerprint(**request) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _reserve_request_id(workspace_id: str, client_request_id: str, job_id) -> bool | None:
    """True if this request took the id, False if it was taken, None if Redis is unreachable."""
    key = redis_keys.idempotency_key(workspace_id, client_request_id)
    try:
        return bool(get_redis().set(key, str(job_id), nx=True, ex=settings.IDEMPOTENCY_TTL_SECONDS))
    except redis.RedisError as exc:
        logger.warning("idempotency fast path unavailable, relying on the database: %s", exc)
        return None


def _point_request_id_at(workspace_id: str, client_request_id: str, job_id) -> None:
    # Reached when the key was reserved with an id that lost the race to the constraint: make
    # the key name the job that exists, so an operator reading it is not misled.
    key = redis_keys.idempotency_key(workspace_id, client_request_id)
    with contextlib.suppress(redis.RedisError):  # a hint only: the constraint already decided
        get_redis().set(key, str(job_id), xx=True, keepttl=True)


def _replay(job: Job, fingerprint: str) -> Submission:
    if job.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This client_request_id was already used with a different request body."
        )
    return Submission(job=job, replayed=True)


def _publish_on_commit(job_id) -> None:
    # A closure, not functools.partial: Django 5.2 names the callback by __qualname__ when a
    # robust callback fails, and a partial has none (Django ticket #36487), so the failure of a
    # dead broker would become a 500 for a job already stored.
    def publish() -> None:
        publish_job(job_id)

    transaction.on_commit(publish, robust=True)


def publish_job(job_id) -> None:
    """Send the job's message: its id only; everything else is re-read from PostgreSQL."""
    from orchestrator.tasks import run_job  # tasks import this module

    run_job.apply_async(args=[str(job_id)])


# --- Running ----------------------------------------------------------------------------------


def execute_job(*, job_id: str) -> None:
    """Run a job to its end, resuming from its stored plan; a job not queued is left alone."""
    job = _claim(job_id)
    if job is None:
        logger.info("job %s is not queued; this delivery does nothing", job_id)
        return
    try:
        _converse(job)
    except ModelUnavailable as exc:
        if job.attempts >= settings.JOB_MAX_ATTEMPTS:
            _finish(job, Status.FAILED, error_code="model_unavailable", error_message=str(exc))
            return
        _hand_back(job)
        raise
    except ModelRequestFailed as exc:
        _finish(job, Status.FAILED, error_code="model_error", error_message=str(exc))


def _claim(job_id: str) -> Job | None:
    # The conditional UPDATE is the lock: of two deliveries of one message, one claims.
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
    )
    if not claimed:
        return None
    return Job.objects.select_related("workspace").get(pk=job_id)


def _converse(job: Job) -> None:
    """Alternate model calls and tool executions until the model answers in text."""
    tools = tools_for(job.allowed_actions)
    while True:
        pending = _unanswered_calls(job)
        if pending:
            _run_calls(job, pending)
            if not _save_progress(job):
                return
            continue
        last = job.transcript[-1] if job.transcript else None
        if last is not None and last["role"] == "assistant" and not last.get("tool_calls"):
            _finish(job, Status.SUCCEEDED, output_text=last.get("content") or "")
            return

        # A worker thread must not hold a database connection through seconds of waiting.
        connections.close_all()
        reply = model_client.complete_chat(
            model=job.model,
            messages=job.messages + job.transcript,
            tools=tools,
            max_tokens=job.max_output_tokens,
        )
        _record_reply(job, reply)
        if reply.tool_calls:
            limit = _limit_breached(job)
            if limit:
                _refuse_calls(job, _unanswered_calls(job), reason="limit_exceeded")
                _finish(job, Status.FAILED, error_code="limit_exceeded", error_message=limit)
                return
        if not _save_progress(job):
            return


def _record_reply(job: Job, reply: model_client.ModelReply) -> None:
    message: dict = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        round_number = _tool_rounds(job) + 1
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.tool_name, "arguments": call.arguments},
            }
            for call in reply.tool_calls
        ]
        job.tool_calls = job.tool_calls + [
            {
                "call_key": f"{round_number}.{index}",
                "tool": call.tool_name,
                "arguments": call.arguments,
            }
            for index, call in enumerate(reply.tool_calls)
        ]
    job.transcript = job.transcript + [message]
    usage = dict(job.usage)
    for name, value in reply.usage.items():
        usage[name] = usage.get(name, 0) + value
    usage["model_calls"] = usage.get("model_calls", 0) + 1
    job.usage = usage


def _tool_rounds(job: Job) -> int:
    return sum(1 for m in job.transcript if m["role"] == "assistant" and m.get("tool_calls"))


def _limit_breached(job: Job) -> str:
    if _tool_rounds(job) > settings.AI_MAX_TOOL_ROUNDS:
        return f"the model asked for more than {settings.AI_MAX_TOOL_ROUNDS} rounds of actions"
    if len(job.tool_calls) > settings.AI_MAX_ACTIONS_PER_JOB:
        return f"the model proposed more than {settings.AI_MAX_ACTIONS_PER_JOB} actions"
    return ""


def _unanswered_calls(job: Job) -> list[tuple[str, dict]]:
    """(call key, tool call) pairs of the latest plan step that have no tool result yet."""
    for position in range(len(job.transcript) - 1, -1, -1):
        message = job.transcript[position]
        if message["role"] == "assistant":
            calls = message.get("tool_calls") or []
            answered = len(job.transcript) - position - 1
            round_number = _tool_rounds(job)
            return [
                (f"{round_number}.{index}", call)
                for index, call in enumerate(calls)
                if index >= answered
            ]
    return []


def _proposals(job: Job, calls: list[tuple[str, dict]]) -> list[Proposal]:
    return [
        Proposal(
            job_id=job.id,
            workspace_id=job.workspace_id,
            call_key=call_key,
            tool_call_id=call["id"],
            tool_name=call["function"]["name"],
            raw_arguments=call["function"]["arguments"],
        )
        for call_key, call in calls
    ]


def _run_calls(job: Job, pending: list[tuple[str, dict]]) -> None:
    # Re-read: the workspace's allow-list may have changed since the job was submitted.
    workspace_actions = Workspace.objects.get(pk=job.workspace_id).effective_allowed_actions
    for proposal in _proposals(job, pending):
        outcome = run_proposed_action(
            proposal, job_actions=job.allowed_actions, workspace_actions=workspace_actions
        )
        job.transcript = job.transcript + [
            {
                "role": "tool",
                "tool_call_id": proposal.tool_call_id,
                "content": outcome.as_tool_result(),
            }
        ]


def _refuse_calls(job: Job, calls: list[tuple[str, dict]], *, reason: str) -> None:
    # Every proposal leaves an audit row, including those the job's limits stop.
    for proposal in _proposals(job, calls):
        refuse_proposed_action(proposal, reason=reason)


def _save_progress(job: Job) -> bool:
    """Persist the conversation and renew the lease; False if the job is no longer ours."""
    return bool(
        Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            transcript=job.transcript,
            tool_calls=job.tool_calls,
            usage=job.usage,
            lease_expires_at=timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS),
        )
    )


def _finish(job: Job, status: str, **fields) -> None:
    Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=status,
        transcript=job.transcript,
        tool_calls=job.tool_calls,
        usage=job.usage,
        finished_at=timezone.now(),
        lease_expires_at=None,
        **fields,
    )
    logger.info("job %s %s", job.pk, status)


def _hand_back(job: Job) -> None:
    # Conditional, like the claim: only the worker that holds the job may give it back.
    Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=Status.QUEUED,
        transcript=job.transcript,
        tool_calls=job.tool_calls,
        usage=job.usage,
        enqueued_at=timezone.now(),
        lease_expires_at=None,
    )


# --- Sweeping ---------------------------------------------------------------------------------


def requeue_stale_jobs() -> int:
    """Republish queued jobs whose message may be lost and hand back jobs whose lease expired.

    Returns how many jobs were republished.
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.JOB_REQUEUE_AFTER_SECONDS)
    with transaction.atomic():
        # skip_locked: a second sweeper running at the same moment takes other rows, so no job
        # is republished twice in one round.
        locked = Job.objects.select_for_update(skip_locked=True)
        expired = list(
            locked.filter(status=Status.RUNNING, lease_expires_at__lt=now).values_list(
                "id", "attempts"
            )[:SWEEP_BATCH]
        )
        exhausted = [
            job_id for job_id, attempts in expired if attempts >= settings.JOB_MAX_ATTEMPTS
        ]
        Job.objects.filter(id__in=exhausted).update(
            status=Status.FAILED,
            error_code="attempts_exhausted",
            error_message="the job's worker stopped before finishing, too many times",
            finished_at=now,
            lease_expires_at=None,
        )
        stale = list(
            locked.filter(status=Status.QUEUED, enqueued_at__lt=stale_before)
            .order_by("enqueued_at")
            .values_list("id", flat=True)[:SWEEP_BATCH]
        )
        to_publish = [job_id for job_id, _ in expired if job_id not in exhausted] + stale
        Job.objects.filter(id__in=to_publish).update(
            status=Status.QUEUED, enqueued_at=now, lease_expires_at=None
        )
        for job_id in to_publish:
            _publish_on_commit(job_id)
    if to_publish or exhausted:
        logger.warning(
            "sweeper republished %d jobs (%d with an expired lease), failed %d",
            len(to_publish),
            len(expired) - len(exhausted),
            len(exhausted),
        )
    return len(to_publish)
