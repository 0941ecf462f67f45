"""Signal receivers: Celery's (queue counters, worker heartbeats, the log context of a task) and
the models' (cached API keys)."""

import contextlib
import logging
from contextvars import Token

import redis
from celery import signals
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from core import log_context, metrics, workers
from orchestrator import model_client
from orchestrator.api_keys import forget_cached_keys_on_commit
from orchestrator.job_queue import RUN_JOB
from orchestrator.models import ApiKey, Workspace

logger = logging.getLogger(__name__)

_task_tokens: dict[str, list[Token]] = {}


@signals.after_task_publish.connect
def _count_enqueue(sender=None, **kwargs) -> None:
    # Sent once the broker took the message: first publications, the sweeper's and Celery's
    # retries alike, so enqueue and dequeue match.
    if sender == RUN_JOB:
        metrics.count("ai_queue_enqueue")


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, args=None, **kwargs) -> None:
    job_id = str(args[0]) if task.name == RUN_JOB and args else None
    _task_tokens[task_id] = log_context.bind(
        task_id=task_id,
        job_id=job_id,
        # A custom header of the message (core.publish), kept by Celery's retries.
        request_id=getattr(task.request, "request_id", None),
        workspace=None,  # execution binds it once the job is loaded
    )
    if task.name == RUN_JOB:
        redelivered = (task.request.delivery_info or {}).get("redelivered")
        metrics.record(
            metrics.counted("ai_queue_dequeue"),
            metrics.counted("ai_job_redeliveries") if redelivered else [],
        )


@signals.task_postrun.connect
def _task_ended(task_id=None, **kwargs) -> None:
    tokens = _task_tokens.pop(task_id, None)
    if tokens:
        log_context.unbind(tokens)


@signals.heartbeat_sent.connect
def _heartbeat(sender=None, **kwargs) -> None:
    hostname = sender.eventer.hostname
    try:
        workers.record_heartbeat(hostname)
    except redis.RedisError as exc:
        logger.warning("worker heartbeat not recorded: %s", exc)


@signals.worker_ready.connect
def _worker_ready(sender=None, **kwargs) -> None:
    with contextlib.suppress(redis.RedisError):  # the next heartbeat will try again
        workers.record_heartbeat(sender.hostname)


@signals.worker_init.connect
def _coalesce_metrics(**kwargs) -> None:
    # Before the pool starts, so prefork children inherit it too.
    metrics.coalesce_writes(metrics.WORKER_FLUSH_SECONDS)


@signals.worker_init.connect
def _prepare_model_client(**kwargs) -> None:
    # Before the pool starts, so prefork children inherit the TLS context too.
    model_client.prepare()


@signals.worker_process_shutdown.connect
def _flush_child_metrics(**kwargs) -> None:
    metrics.flush()


@signals.worker_shutdown.connect
def _worker_shutdown(sender=None, **kwargs) -> None:
    metrics.flush()
    with contextlib.suppress(redis.RedisError):  # the timeout forgets it anyway
        workers.forget_worker(sender.hostname)


@receiver([post_save, post_delete], sender=ApiKey)
@receiver([post_save, post_delete], sender=Workspace)
def _credentials_changed(**kwargs) -> None:
    # A web process authenticates from the keys it cached, workspace included: any saved change
    # to either must reach it (updates that bypass save() call forget_cached_keys themselves).
    forget_cached_keys_on_commit()
