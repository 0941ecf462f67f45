"""`task.create`: an internal connector that writes a Task row."""

from datetime import date

from actions.connectors.base import ConnectorResult
from actions.models import Task


class TaskConnector:
    idempotent = True  # the audit row's id is the Task's unique idempotency key

    def execute(
        self, arguments: dict, *, workspace_id: str, idempotency_key: str
    ) -> ConnectorResult:
        """Create the task once per idempotency key and describe it."""
        due = arguments.get("due")
        task, created = Task.objects.get_or_create(
            idempotency_key=idempotency_key,
            defaults={
                "workspace_id": workspace_id,
                "title": arguments["title"],
                "description": arguments.get("description", ""),
                "due": date.fromisoformat(due) if due else None,
                "assignee": arguments.get("assignee", ""),
                "priority": arguments.get("priority", Task.Priority.NORMAL),
            },
        )
        return ConnectorResult(data={"task_id": task.pk, "title": task.title, "created": created})
