"""Workspaces, their API keys, and the jobs they submit."""

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone

MAX_RATE_LIMIT_PER_MINUTE = 100_000


class Workspace(models.Model):
    """A tenant. Every job, key and action belongs to exactly one."""

    id = models.SlugField(primary_key=True, max_length=64)
    name = models.CharField(max_length=200)
    # None means "follow ALLOW_ACTIONS_DEFAULT", so a change of the default reaches every
    # workspace that never chose its own list.
    allowed_actions = ArrayField(models.CharField(max_length=64), null=True, blank=True)
    # Actions that always wait for a human decision in this workspace.
    approval_required = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    # When not empty, e-mail to any other domain waits for a human decision. Lower-case, no
    # trailing dot; a subdomain matches only when listed itself.
    recipient_domains = ArrayField(models.CharField(max_length=253), default=list, blank=True)
    # Where job events go when a job names no webhook_url of its own; signed with the secret
    # (`whsec_...`, Standard Webhooks), which configure_workspace sets and rotates.
    # db_default: processes of the previous release, still running during a deploy, insert
    # rows without these columns.
    webhook_url = models.URLField(max_length=2000, blank=True, db_default="")
    webhook_secret = models.CharField(max_length=100, blank=True, db_default="")
    # None follows RATE_LIMIT_PER_MINUTE; 0 means unlimited.
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(MAX_RATE_LIMIT_PER_MINUTE)]
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.id

    @property
    def effective_allowed_actions(self) -> list[str]:
        """The actions this workspace allows: its own list, or ALLOW_ACTIONS_DEFAULT."""
        if self.allowed_actions is None:
            return list(settings.ALLOW_ACTIONS_DEFAULT)
        return list(self.allowed_actions)


class WorkspacePolicyChange(models.Model):
    """One audited change of a workspace's policy: who, when, and each field's old and new value."""

    # No index of its own: policy_change_ws_idx leads with it.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="policy_changes", db_index=False
    )
    changed_by = models.CharField(max_length=150)
    changes = models.JSONField()  # {"field": {"old": ..., "new": ...}}
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="policy_change_ws_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} by {self.changed_by} at {self.created_at:%Y-%m-%d %H:%M}"


class ApiKey(models.Model):
    """A workspace credential; only its public prefix and an HMAC digest of its secret are kept."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.workspace_id}/{self.prefix}"

    def is_active(self, now=None) -> bool:
        """True unless the key is revoked or past its expiry."""
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class JobQuerySet(models.QuerySet):
    def for_workspace(self, workspace: Workspace) -> "JobQuerySet":
        """Every API lookup starts here, so another workspace's job is a 404 by construction."""
        return self.filter(workspace=workspace)


class Job(models.Model):
    """One AI request: its input, the model's stored plan and replies, and its outcome."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINAL_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the unique constraint and job_workspace_created_idx lead with it, and
    # every index is written on each insert, claim and finish (a status change is never HOT).
    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="jobs", db_index=False
    )
    # The key that submitted the job (none for jobs made by other means): the audit report
    # names the busiest keys.
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    client_request_id = models.CharField(max_length=128)
    request_fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)

    messages = models.JSONField()
    model = models.CharField(max_length=100)
    max_output_tokens = models.PositiveIntegerField()
    allowed_actions = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Overrides the workspace's webhook_url for this job's events (db_default: see Workspace).
    webhook_url = models.URLField(max_length=2000, blank=True, db_default="")

    # The conversation after the input: each model reply is stored here before any of its tool
    # calls runs, followed by the tool results, so a redelivered job resumes from the stored
    # plan instead of asking the model again.
    transcript = models.JSONField(default=list, blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    output_text = models.TextField(blank=True)
    usage = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(default=timezone.now)
    # When a message for this job was last published (or meant to be): the sweeper republishes
    # queued jobs whose message is older than JOB_REQUEUE_AFTER_SECONDS.
    enqueued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the client asked to cancel; the job is `cancelled` from then on.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # A running job belongs to its worker until then; after it, the sweeper hands it back.
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "client_request_id"], name="job_unique_client_request_id"
            ),
        ]
        indexes = [
            # The sweeper's scan touches only unfinished jobs.
            models.Index(
                fields=["status", "enqueued_at"],
                name="job_unfinished_idx",
                condition=models.Q(status__in=["queued", "running"]),
            ),
            models.Index(fields=["workspace", "-created_at"], name="job_workspace_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id}/{self.client_request_id}"


class WebhookDelivery(models.Model):
    """One event for one URL; its id is the `webhook-id` on every attempt, for deduplication."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up after WEBHOOK_RETRY_FOR_SECONDS

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: webhook_ws_created_idx leads with it.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="webhooks", db_index=False
    )
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="webhooks")
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    url = models.URLField(max_length=2000)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    # Retries stop after this; a redelivery from the admin opens a new window.
    retry_until = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["workspace", "-created_at"], name="webhook_ws_created_idx")]
        # Sending an event again is an operator's act, not a viewer's (manage.py grant_admin_role).
        permissions = [("redeliver_webhook", "Can redeliver webhooks")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.job_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One POST of a delivery: what came back, never more than a short excerpt of the body."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    response_excerpt = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["attempted_at"]

    def __str__(self) -> str:
        return f"{self.attempted_at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"
