"""Running a claimed job: model calls and tool executions until the model answers in text.

Each model reply is stored before any of its tool calls runs, so a redelivered job resumes from
its stored plan instead of asking the model again.
"""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.utils import timezone

from actions.policy import WorkspacePolicy
from actions.registry import tools_for
from actions.services import Proposal, refuse_proposed_action, run_proposed_action
from core import log_context, metrics
from orchestrator import lifecycle, model_client
from orchestrator.exceptions import ModelRequestFailed, ModelUnavailable
from orchestrator.models import Job, Workspace
from orchestrator.webhooks import record_action_event, record_job_event

logger = logging.getLogger(__name__)

Status = Job.Status


# --- Running ----------------------------------------------------------------------------------


def execute_job(*, job_id: str) -> None:
    """Run a job to its end, resuming from its stored plan; a job not queued is left alone."""
    job = _claim(job_id)
    if job is None:
        logger.info("job %s is not queued; this delivery does nothing", job_id)
        return
    log_context.bind(workspace=job.workspace_id)  # reset when the task ends
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
    except (OperationalError, InterfaceError):
        # The database went away mid-job: the job did nothing wrong, so it is handed back, not
        # failed, and the task retries with backoff until the database answers again.
        _hand_back_after_database_error(job)
        raise
    except Exception as exc:
        # A fault no retry would mend (what the model wrote broke something): the job ends
        # now rather than crash every delivery until its attempts run out. Its progress is
        # not written, as that may be what failed.
        logger.exception("job %s failed unexpectedly", job.pk)
        _finish(
            job,
            Status.FAILED,
            progress=False,
            error_code="internal_error",
            error_message=f"the job stopped on an unexpected error ({type(exc).__name__})",
        )


def _claim(job_id: str) -> Job | None:
    """Take a queued job for this worker, or None when another delivery already did."""
    try:
        pk = uuid.UUID(job_id)
    except ValueError:
        return None
    # Of two deliveries of one message, one claims. The row comes with the workspace's default
    # webhook URL, so finishing needs no further query.
    now = timezone.now()
    lease = now + timedelta(seconds=settings.JOB_LEASE_SECONDS)
    return lifecycle.claim(pk, now=now, lease_expires_at=lease)


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
        # A worker thread must not hold a database connection through seconds of waiting.
        connections.close_all()
        reply = model_client.complete_chat(
            model=job.model,
            messages=job.messages + job.transcript,
            tools=tools,
            max_tokens=job.max_output_tokens,
        )
        _record_reply(job, reply)
        if not reply.tool_calls:
            # The final answer: one UPDATE stores the reply and finishes the job.
            _finish(job, Status.SUCCEEDED, output_text=reply.text)
            return
        limit = _limit_breached(job)
        if limit:
            _refuse_calls(job, _unanswered_calls(job), reason="limit_exceeded")
            _finish(job, Status.FAILED, error_code="limit_exceeded", error_message=limit)
            return
        # The plan is stored before any of its calls runs.
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
    # Re-read: the workspace's policy may have changed since the job was submitted.
    workspace = WorkspacePolicy.of(Workspace.objects.get(pk=job.workspace_id))
    for proposal in _proposals(job, pending):
        # One round trip both ways: a job cancelled since the last step runs no further action
        # (the save that follows finds it no longer running and stops the conversation), and a
        # job still ours renews its lease, so slow sends never let the sweeper hand it away.
        if not _renew_lease(job):
            return
        outcome = run_proposed_action(
            proposal, job_actions=job.allowed_actions, workspace=workspace
        )
        if outcome.newly_held:
            # Tell the workspace's webhook a decision is awaited (nothing when it has none).
            record_action_event(job_id=job.pk, status=outcome.status)
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


def _renew_lease(job: Job) -> bool:
    """Extend the job's lease; False if it is no longer running (cancelled or handed back)."""
    return lifecycle.move(
        job.pk,
        source=Status.RUNNING,
        target=Status.RUNNING,
        lease_expires_at=timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS),
    )


def _save_progress(job: Job) -> bool:
    """Persist the conversation and renew the lease; False if the job is no longer ours."""
    saved = lifecycle.move(
        job.pk,
        source=Status.RUNNING,
        target=Status.RUNNING,
        transcript=job.transcript,
        tool_calls=job.tool_calls,
        usage=job.usage,
        lease_expires_at=timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS),
    )
    if not saved:
        logger.info("job %s is no longer running (cancelled or handed back); stopping", job.pk)
    return saved


def _finish(job: Job, status: str, *, progress: bool = True, **fields) -> None:
    """End the job; with `progress`, its conversation so far is stored in the same UPDATE."""
    now = timezone.now()
    if progress:
        fields.update(transcript=job.transcript, tool_calls=job.tool_calls, usage=job.usage)
    finished = lifecycle.move(
        job.pk,
        source=Status.RUNNING,
        target=status,
        finished_at=now,
        lease_expires_at=None,
        **fields,
    )
    if finished:  # not when the job was cancelled meanwhile: cancel_job sent that event
        record_job_event(job_id=job.pk, webhook_url=job.webhook_url or job.workspace_webhook_url)
        per_workspace = (
            metrics.counted("ai_workspace_jobs_finished", workspace=job.workspace_id, status=status)
            if settings.METRICS_WORKSPACE_LABEL
            else []
        )
        metrics.record(
            _queue_wait(job),
            metrics.counted("ai_jobs_finished", status=status),
            metrics.observed("ai_job_duration_seconds", (now - job.started_at).total_seconds()),
            per_workspace,
        )
        logger.info("job %s %s", job.pk, status)


def _hand_back(job: Job) -> None:
    # Conditional, like the claim: only the worker that holds the job may give it back.
    lifecycle.move(
        job.pk,
        source=Status.RUNNING,
        target=Status.QUEUED,
        transcript=job.transcript,
        tool_calls=job.tool_calls,
        usage=job.usage,
        enqueued_at=timezone.now(),
        lease_expires_at=None,
    )
    metrics.record(_queue_wait(job))


def _hand_back_after_database_error(job: Job) -> None:
    # The connection that failed may be broken: back to the pool, which discards it, so the
    # hand-back gets a fresh one (PostgreSQL restarted: it answers again at once).
    connections.close_all()
    try:
        _hand_back(job)
    except (OperationalError, InterfaceError) as exc:
        # Still down: the job stays running until its lease expires, then the sweeper hands
        # it back. It is not lost either way.
        logger.warning("job %s not handed back, the database is unavailable: %s", job.pk, exc)
    else:
        logger.warning("job %s handed back after a database error", job.pk)


def _queue_wait(job: Job) -> list:
    # Observed when the claim ends (finished or handed back), in the round trip that records
    # the outcome, rather than in a Redis round trip of its own when the claim starts.
    return metrics.observed(
        "ai_job_queue_wait_seconds", (job.started_at - job.enqueued_at).total_seconds()
    )
