"""The action audit trail: one row per action a model proposed, whatever became of it."""

from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.fields.json import KeyTransform
from django.utils import timezone


class ActionAuditQuerySet(models.QuerySet):
    def for_workspace(self, workspace) -> "ActionAuditQuerySet":
        """Every API lookup starts here: another workspace's action is a 404 by construction."""
        return self.filter(workspace=workspace)


class ActionAudit(models.Model):
    """What a job's model proposed, what the policy decided, and what the connector did."""

    class Status(models.TextChoices):
        EXECUTING = "executing"  # committed before the connector is called
        PENDING_APPROVAL = "pending_approval"  # waits for a human decision
        EXECUTED = "executed"
        FAILED = "failed"
        SKIPPED = "skipped"  # kill switch
        DENIED = "denied"  # not allowed for this job or workspace
        REJECTED = "rejected"  # arguments invalid
        UNKNOWN = "unknown"  # interrupted mid-call: needs a human, never resent blindly
        EXPIRED = "expired"  # nobody decided before the approval's expiry

    # Only rows in these statuses may still change (to their outcome); the others are history.
    OPEN_STATUSES = (Status.EXECUTING, Status.PENDING_APPROVAL)
    FINAL_STATUSES = (
        Status.EXECUTED,
        Status.FAILED,
        Status.SKIPPED,
        Status.DENIED,
        Status.REJECTED,
        Status.UNKNOWN,
        Status.EXPIRED,
    )

    # Neither has an index of its own: action_audit_ws_created_idx and the unique constraint lead
    # with them, and every index is written on each insert and status change.
    workspace = models.ForeignKey(
        "orchestrator.Workspace",
        on_delete=models.PROTECT,
        related_name="action_audits",
        db_index=False,
    )
    job = models.ForeignKey(
        "orchestrator.Job", on_delete=models.PROTECT, related_name="actions", db_index=False
    )
    # The step in the job's stored plan ("<round>.<index>"), not the model's tool-call id: a
    # model may reuse ids, the plan's position is stable across redeliveries.
    call_key = models.CharField(max_length=32)
    action = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=64, blank=True)
    result = models.JSONField(default=dict, blank=True)
    # SHA-256 of the canonical JSON of `arguments`: an approval names the exact arguments it
    # approves, and the executor refuses arguments that no longer match it.
    arguments_hash = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # of a pending approval
    # Written in the same UPDATE that moves the row out of pending_approval.
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # Set by the conditional UPDATE that claims the connector call: an `executing` row without
    # it never reached the provider and may run; with it, a crash leaves the outcome unknown.
    started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ActionAuditQuerySet.as_manager()

    class Meta:
        db_table = "action_audit"
        # Deciding is not viewing: a reviewer needs this, an auditor has view_actionaudit only
        # (manage.py grant_admin_role). Nobody holds it by default; superusers hold everything.
        permissions = [("decide_action", "Can approve or reject actions pending approval")]
        constraints = [
            models.UniqueConstraint(fields=["job", "call_key"], name="action_audit_unique_call"),
        ]
        # One index behind each admin filter and search field (newest first, as the list is
        # sorted), and created_at alone for the date hierarchy and the archive's cutoff scan.
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="action_audit_ws_created_idx"),
            models.Index(fields=["status", "-created_at"], name="action_audit_status_idx"),
            models.Index(fields=["action", "-created_at"], name="action_audit_action_idx"),
            models.Index(fields=["reason", "-created_at"], name="action_audit_reason_idx"),
            models.Index(fields=["-created_at"], name="action_audit_created_idx"),
            models.Index(fields=["call_key"], name="action_audit_call_key_idx"),
            # Recipient search: `arguments->'to' @> '["a@example.com"]'`.
            GinIndex(KeyTransform("to", "arguments"), name="action_audit_recipient_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.status} ({self.job_id}/{self.call_key})"


class AuditArchive(models.Model):
    """One archive file written by archive_audit; pending until its rows are deleted.

    Recorded before the manifest, so a run aimed at another directory finds an interrupted
    archive and refuses to write the same rows a second time."""

    directory = models.CharField(max_length=1000)
    file = models.CharField(max_length=200)
    rows = models.PositiveIntegerField()
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    cutoff = models.DateTimeField()
    written_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["directory", "file"], name="audit_archive_unique_file")
        ]

    def __str__(self) -> str:
        return f"{self.directory}/{self.file}"
