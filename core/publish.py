"""Publishing task messages: after the caller's commit, through Celery's public `send_task`.

By task name, so a module that publishes never imports the tasks module that runs it (which
imports the publisher's own services): the layers stay one-way. Routing by name (the webhook
queue) is Celery's, from CELERY_TASK_ROUTES.
"""

from celery import current_app
from django.db import transaction


def publish_on_commit(task_name: str, *args: object) -> None:
    """Send `task_name(*args)` once the current transaction commits (at once in autocommit).

    robust: a dead broker is logged, not raised. The row that asked for the message is stored,
    and a sweeper republishes what never left.
    """

    # A closure, not functools.partial: Django names a failed robust callback by its
    # __qualname__, which a partial lacks (Django ticket #36487).
    def publish() -> None:
        current_app.send_task(task_name, args=list(args))

    transaction.on_commit(publish, robust=True)
