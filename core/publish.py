"""Publishing task messages, all of them, through Celery's public `send_task`.

By task name, so a module that publishes never imports the tasks module that runs it (which
imports the publisher's own services): the layers stay one-way. Routing by name (the webhook
queue) is Celery's, from CELERY_TASK_ROUTES. Retries are Celery's own (Task.retry), which
carries the custom headers of the message it retries.
"""

from collections.abc import Iterable, Sequence

from celery import current_app
from django.db import transaction

from core import log_context


def context_headers() -> dict[str, str]:
    """Custom message headers taken from the caller's log context (the submitting request)."""
    request_id = log_context.get("request_id")
    # The worker binds it to its log lines for the task (orchestrator.signals).
    return {"request_id": request_id} if request_id else {}


def publish(
    task_name: str, arg_lists: Iterable[Sequence[object]], *, headers: dict[str, str]
) -> None:
    """Send one `task_name` message per argument list now, through one pooled producer.

    Raises kombu's OperationalError when the broker stays unreachable past the retry policy.
    """
    with current_app.producer_or_acquire() as producer:
        for args in arg_lists:
            current_app.send_task(task_name, args=list(args), headers=headers, producer=producer)


def publish_on_commit(task_name: str, *args: object) -> None:
    """Send `task_name(*args)` once the current transaction commits (at once in autocommit)."""
    publish_each_on_commit(task_name, [args])


def publish_each_on_commit(task_name: str, arg_lists: Iterable[Sequence[object]]) -> None:
    """Send one `task_name` message per argument list once the current transaction commits.

    robust: a dead broker is logged, not raised. The rows that asked for the messages are
    stored, and a sweeper republishes what never left.
    """
    arg_lists = [list(args) for args in arg_lists]
    if not arg_lists:
        return
    headers = context_headers()  # now, while the caller's context is still bound

    # A closure, not functools.partial: Django names a failed robust callback by its
    # __qualname__, which a partial lacks (Django ticket #36487).
    def publish_committed() -> None:
        publish(task_name, arg_lists, headers=headers)

    transaction.on_commit(publish_committed, robust=True)
