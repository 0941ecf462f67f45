"""Records the internal connectors create."""

from django.db import models
from django.utils import timezone


class Task(models.Model):
    """A to-do item created by the `task.create` action."""

    class Priority(models.TextChoices):
        LOW = "low"
        NORMAL = "normal"
        HIGH = "high"

    workspace = models.ForeignKey(
        "orchestrator.Workspace", on_delete=models.PROTECT, related_name="tasks"
    )
    # The audit row's id: a retried execution finds the task it already made.
    idempotency_key = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    due = models.DateField(null=True, blank=True)
    assignee = models.EmailField(blank=True)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.title


class Connection(models.Model):
    """A workspace's credentials for one mail provider; tokens are Fernet ciphertext only."""

    class Provider(models.TextChoices):
        GOOGLE = "google"
        MICROSOFT = "microsoft"

    # No index of its own: the unique constraint on (workspace, provider) leads with it.
    workspace = models.ForeignKey(
        "orchestrator.Workspace",
        on_delete=models.CASCADE,
        related_name="connections",
        db_index=False,
    )
    provider = models.CharField(max_length=16, choices=Provider.choices)
    # Written and read through actions.connections only, which encrypts and decrypts.
    access_token_encrypted = models.TextField()
    refresh_token_encrypted = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "provider"], name="connection_unique_provider"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id}/{self.provider}"
