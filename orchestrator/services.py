"""Submitting jobs and sweeping stale ones (status moves: lifecycle.py; running: execution.py)."""

import contextlib
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from core import metrics, redis_keys
from core.redis_client import get_redis
from orchestrator import job_queue, lifecycle
from orchestrator.exceptions import (
    IdempotencyKeyReused,
    OrchestratorError,
    RateLimited,
)
from orchestrator.models import ApiKey, Job, Workspace
from orchestrator.rate_limits import RateLimit, hit_workspace_limit, release_reservation
from orchestrator.webhooks import WebhookUrlRefused, check_webhook_url, record_job_event

logger = logging.getLogger(__name__)

Status = Job.Status
SWEEP_BATCH = 500


class ActionsNotAllowed(OrchestratorError):
    code = "invalid_request"
    status = 400


class UnstorableRequest(OrchestratorError):
    code = "invalid_request"
    status = 400


@dataclass(frozen=True)
class Submission:
    job: Job
    replayed: bool
    rate_limit: RateLimit


# --- Submitting -------------------------------------------------------------------------------


def submit_job(
    *,
    workspace: Workspace,
    client_request_id: str,
    messages: list[dict],
    api_key: ApiKey | None = None,
    actions: list[str] | None = None,
    model: str | None = None,
    max_output_tokens: int | None = None,
    metadata: dict | None = None,
    webhook_url: str | None = None,
    confirm_generation: str | None = None,
) -> Submission:
    """Count the request against the workspace's rate limit, then store the job once per
    (workspace, client_request_id) and publish it after commit.

    Redis `SET NX` (in the rate limiter's round trip) is the fast path for replays; the unique
    constraint is the guarantee, so submission keeps working while Redis is down.
    `confirm_generation` is a cached key's, checked in that round trip (CredentialsUnconfirmed).
    """
    allowed = workspace.effective_allowed_actions
    if actions is not None and not set(actions) <= set(allowed):
        refused = sorted(set(actions) - set(allowed))
        raise ActionsNotAllowed(
            "Some requested actions are not allowed for this workspace.",
            fields={"actions": [f"not allowed for this workspace: {', '.join(refused)}"]},
        )
    if webhook_url:
        _check_job_webhook(workspace, webhook_url)
    fingerprint = _fingerprint(
        messages=messages,
        actions=actions,
        model=model,
        max_output_tokens=max_output_tokens,
        metadata=metadata,
        # Only when given, so jobs stored before webhooks existed keep their fingerprints.
        **({"webhook_url": webhook_url} if webhook_url else {}),
    )
    job_id = uuid.uuid4()
    # One round trip counts the request and reserves the id; a refused request reserves nothing.
    rate_limit = hit_workspace_limit(
        workspace=workspace,
        reserve=(client_request_id, str(job_id)),
        confirm_generation=confirm_generation,
    )
    if not rate_limit.allowed:
        raise RateLimited(rate_limit)
    if rate_limit.reserved is False:
        existing = _existing_job(workspace, client_request_id)
        # No row yet means the first request is still in flight or failed before committing:
        # fall through to the insert and let the constraint decide.
        if existing is not None:
            return _replay(existing, fingerprint, rate_limit)

    try:
        with _own_statement():
            job = lifecycle.create(
                id=job_id,
                workspace=workspace,
                api_key=api_key,
                client_request_id=client_request_id,
                request_fingerprint=fingerprint,
                messages=messages,
                model=model or settings.AI_MODEL,
                max_output_tokens=max_output_tokens or settings.AI_MAX_OUTPUT_TOKENS,
                allowed_actions=[name for name in allowed if actions is None or name in actions],
                metadata=metadata or {},
                webhook_url=webhook_url or "",
            )
    except IntegrityError:
        existing = _existing_job(workspace, client_request_id)
        if existing is None:
            _release(rate_limit, workspace, client_request_id, job_id)
            raise
        _point_request_id_at(workspace.id, client_request_id, existing.id)
        return _replay(existing, fingerprint, rate_limit)
    except DataError as exc:
        # A value validation let through (a direct caller's inf or NUL): the client's error.
        # The database's message quotes the data, so it is not logged.
        _release(rate_limit, workspace, client_request_id, job_id)
        logger.warning("the database refused a job's values; nothing was stored")
        raise UnstorableRequest(
            "The request holds a value that cannot be stored (a non-finite number, "
            "a NUL character or an unpaired surrogate)."
        ) from exc
    except Exception:
        _release(rate_limit, workspace, client_request_id, job_id)
        raise
    # Committed already in autocommit (so this publishes now); after the caller's commit when
    # submit_job runs inside a transaction.
    job_queue.publish_jobs_on_commit([job.id])
    return Submission(job=job, replayed=False, rate_limit=rate_limit)


def _release(
    rate_limit: RateLimit, workspace: Workspace, client_request_id: str, job_id: uuid.UUID
) -> None:
    # Left in place, the key would name a job that does not exist for up to a day.
    if rate_limit.reserved:
        release_reservation(
            workspace=workspace, client_request_id=client_request_id, job_id=str(job_id)
        )


def _check_job_webhook(workspace: Workspace, webhook_url: str) -> None:
    # Refused at submission, so a client learns now, not from a webhook that never comes.
    if not workspace.webhook_secret:
        raise WebhookUrlRefused(
            "This workspace has no webhook secret yet (configure_workspace "
            "--rotate-webhook-secret).",
            fields={"webhook_url": ["The workspace has no webhook secret."]},
        )
    try:
        check_webhook_url(webhook_url)
    except WebhookUrlRefused as exc:
        exc.fields = {"webhook_url": [exc.message]}
        raise


def _own_statement() -> contextlib.AbstractContextManager:
    # A single INSERT needs no transaction of its own: in autocommit it commits alone, without
    # the BEGIN and COMMIT round trips of atomic(). Inside a caller's transaction, a savepoint
    # keeps a duplicate's IntegrityError from breaking that transaction.
    if transaction.get_connection().in_atomic_block:
        return transaction.atomic()
    return contextlib.nullcontext()


def _existing_job(workspace: Workspace, client_request_id: str) -> Job | None:
    return Job.objects.filter(workspace=workspace, client_request_id=client_request_id).first()


def _fingerprint(**request) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _point_request_id_at(workspace_id: str, client_request_id: str, job_id) -> None:
    # Reached when the key was reserved with an id that lost the race to the constraint: make
    # the key name the job that exists, so an operator reading it is not misled.
    key = redis_keys.idempotency_key(workspace_id, client_request_id)
    with contextlib.suppress(redis.RedisError):  # a hint only: the constraint already decided
        get_redis().set(key, str(job_id), xx=True, keepttl=True)


def _replay(job: Job, fingerprint: str, rate_limit: RateLimit) -> Submission:
    if job.request_fingerprint != fingerprint:
        error = IdempotencyKeyReused(
            "This client_request_id was already used with a different request body."
        )
        error.rate_limit = rate_limit  # counted already: the view must not count it again
        raise error
    return Submission(job=job, replayed=True, rate_limit=rate_limit)


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
        lifecycle.move_all(
            exhausted,
            source=Status.RUNNING,
            target=Status.FAILED,
            error_code="attempts_exhausted",
            error_message="the job's worker stopped before finishing, too many times",
            finished_at=now,
            lease_expires_at=None,
        )
        for job_id in exhausted:
            record_job_event(job_id=job_id)
        stale = list(
            locked.filter(status=Status.QUEUED, enqueued_at__lt=stale_before)
            .order_by("enqueued_at")
            .values_list("id", flat=True)[:SWEEP_BATCH]
        )
        to_publish = [job_id for job_id, _ in expired if job_id not in exhausted] + stale
        # Expired leases and stale queued jobs alike: queued again, with a fresh enqueued_at.
        lifecycle.move_all(
            to_publish,
            source=(Status.RUNNING, Status.QUEUED),
            target=Status.QUEUED,
            enqueued_at=now,
            lease_expires_at=None,
        )
        job_queue.publish_jobs_on_commit(to_publish)
    if to_publish or exhausted:
        metrics.record(
            metrics.counted("ai_sweeper_republished", len(to_publish)),
            metrics.counted("ai_jobs_finished", len(exhausted), status=Status.FAILED),
        )
        logger.warning(
            "sweeper republished %d jobs (%d with an expired lease), failed %d",
            len(to_publish),
            len(expired) - len(exhausted),
            len(exhausted),
        )
    return len(to_publish)
